/**
 * report leftovers over fabricated state and relay log: exact rows for a failed account,
 * a waiting one, an excluded one, an imported account that never logged in, and an alias
 * that only receives mail (including list mail and an auto-reply).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RelayLogEntry } from '../../src/core/smtp/relay-log.js';
import {
  leftoversReport,
  leftoversView,
  type LeftoverRow,
  type ReportInputs,
} from '../../src/core/reports/index.js';
import { formatReport } from '../../src/cli/render-report.js';
import type { AccountRecord } from '../../src/core/state/types.js';
import { accountRecord } from '../support/state-helpers.js';

const NOW = new Date('2026-11-20T12:00:00.000Z');
const SEALED = { kid: 'k1', iv: 'aQ==', tag: 'dA==', data: 'ZA==' };

const rec = accountRecord;

let seq = 0;
function relay(time: string, to: string[], extra: Partial<RelayLogEntry> = {}): RelayLogEntry {
  seq++;
  return {
    time,
    session: `s${seq}`,
    listener: 'smtp',
    client: '192.0.2.1',
    from: 'someone@remote.example',
    recipients: to.map((address) => ({ address, reason: 'first-login' as const })),
    size: 1000,
    route: 'source',
    backend: '127.0.0.1:25',
    reply: '250 2.0.0 Ok: queued',
    accepted: true,
    auto: [],
    durationMs: 5,
    ...extra,
  };
}

const records: AccountRecord[] = [
  rec('alice@example.org', 'migrated', {
    lastLogin: '2026-11-02T08:00:00.000Z',
    credentials: SEALED,
  }),
  rec('bob@example.org', 'failed', {
    lastLogin: '2026-11-03T08:00:00.000Z',
    credentials: SEALED,
    reason: 'destination refused APPEND: [OVERQUOTA] quota exceeded',
    errors: [{ at: '2026-11-03T09:00:00.000Z', cause: 'transfer', detail: 'old' }],
  }),
  rec('carol@example.org', 'captured', {
    lastLogin: '2026-11-19T10:00:00.000Z',
    credentials: SEALED,
  }),
  rec('shared@example.org', 'excluded', { reason: 'shared mailbox, moved by hand' }),
  rec('dave@example.org', 'unknown', { imported: true }),
  rec('erin@example.org', 'unknown', { imported: true }),
  // logged in once, credentials later forgotten
  rec('frank', 'unknown', { lastLogin: '2026-11-05T08:00:00.000Z' }),
  // imported and migrated: not a leftover
  rec('gina@example.org', 'migrated', { imported: true, lastLogin: '2026-11-04T08:00:00.000Z' }),
];

const log: RelayLogEntry[] = [
  // the alias: three messages, one from a list, one an auto-reply with the null sender
  relay('2026-11-10T09:00:00.000Z', ['Sales@Example.org']),
  relay('2026-11-12T09:00:00.000Z', ['sales@example.org'], {
    from: 'list-bounces@lists.example',
    auto: ['precedence', 'list'],
    precedence: 'list',
    listId: '<news.lists.example>',
  }),
  relay('2026-11-15T09:00:00.000Z', ['sales@example.org', 'dave@example.org'], {
    from: '',
    auto: ['auto-submitted', 'vacation', 'null-sender'],
  }),
  // refused by the source: the address does not exist there, not a leftover
  relay('2026-11-15T10:00:00.000Z', ['nobody@example.org'], {
    accepted: false,
    reply: '550 5.1.1 unknown',
  }),
  // to the destination: nothing on the source
  relay('2026-11-15T11:00:00.000Z', ['alice@example.org'], { route: 'destination' }),
  // a bare login name on the first domain counts for the record "frank"
  relay('2026-11-16T11:00:00.000Z', ['frank@example.org']),
  // only automatic mail: a monitoring address
  relay('2026-11-17T06:00:00.000Z', ['alerts@example.net'], {
    from: 'monitor@ops.example',
    auto: ['auto-submitted'],
    autoSubmitted: 'auto-generated',
  }),
  relay('2026-11-18T06:00:00.000Z', ['alerts@example.net'], {
    from: 'monitor@ops.example',
    auto: ['auto-submitted'],
    autoSubmitted: 'auto-generated',
  }),
];

function inputs(over: Partial<ReportInputs> = {}): ReportInputs {
  return {
    records,
    relay: log,
    ledger: [],
    domains: ['example.org', 'example.net'],
    now: NOW,
    ...over,
  };
}

describe('leftoversReport', () => {
  it('lists every account not migrated and every mail-only address, with exact rows', async () => {
    const r = await leftoversReport(inputs());
    const expected: LeftoverRow[] = [
      {
        address: 'bob@example.org',
        status: 'failed',
        state: 'failed',
        cause: 'destination refused APPEND: [OVERQUOTA] quota exceeded',
        lastLogin: '2026-11-03T08:00:00.000Z',
        messages: 0,
        senders: 0,
        auto: {},
        listIds: [],
        action: 'fix the cause, then: autoport accounts retry bob@example.org',
      },
      {
        address: 'carol@example.org',
        status: 'captured',
        state: 'captured',
        lastLogin: '2026-11-19T10:00:00.000Z',
        messages: 0,
        senders: 0,
        auto: {},
        listIds: [],
        action: 'waits for the worker pool; to move it now: autoport migrate carol@example.org',
      },
      {
        address: 'dave@example.org',
        status: 'never-logged-in',
        state: 'unknown',
        messages: 1,
        firstSeen: '2026-11-15T09:00:00.000Z',
        lastSeen: '2026-11-15T09:00:00.000Z',
        senders: 1,
        auto: { 'auto-submitted': 1, vacation: 1, 'null-sender': 1 },
        listIds: [],
        action:
          'gets mail but never logged in: ask the user to log in once, or migrate with the password: autoport migrate dave@example.org --password-stdin',
      },
      {
        address: 'erin@example.org',
        status: 'never-logged-in',
        state: 'unknown',
        messages: 0,
        senders: 0,
        auto: {},
        listIds: [],
        action:
          'no login and no mail: ask whether it is still used; if not, autoport accounts exclude erin@example.org --reason unused',
      },
      {
        address: 'frank',
        status: 'not-captured',
        state: 'unknown',
        lastLogin: '2026-11-05T08:00:00.000Z',
        messages: 1,
        firstSeen: '2026-11-16T11:00:00.000Z',
        lastSeen: '2026-11-16T11:00:00.000Z',
        senders: 1,
        auto: {},
        listIds: [],
        action:
          'credentials were forgotten: the next login through the gateway captures them again',
      },
      {
        address: 'shared@example.org',
        status: 'excluded',
        state: 'excluded',
        cause: 'shared mailbox, moved by hand',
        messages: 0,
        senders: 0,
        auto: {},
        listIds: [],
        action:
          'excluded on purpose: move it by hand (or autoport accounts include it) before the source goes',
      },
      {
        address: 'alerts@example.net',
        status: 'mail-only',
        messages: 2,
        firstSeen: '2026-11-17T06:00:00.000Z',
        lastSeen: '2026-11-18T06:00:00.000Z',
        senders: 1,
        auto: { 'auto-submitted': 2 },
        listIds: [],
        action:
          'only automatic mail: point the sending system at the destination, or recreate the alias there',
      },
      {
        address: 'sales@example.org',
        status: 'mail-only',
        messages: 3,
        firstSeen: '2026-11-10T09:00:00.000Z',
        lastSeen: '2026-11-15T09:00:00.000Z',
        senders: 3,
        auto: { precedence: 1, list: 1, 'auto-submitted': 1, vacation: 1, 'null-sender': 1 },
        listIds: ['<news.lists.example>'],
        action:
          'alias, list or forward on the source: recreate it on the destination before switching the source off',
      },
    ];
    assert.deepEqual(r.rows, expected);
    assert.deepEqual(r.counts, {
      failed: 1,
      captured: 1,
      transferring: 0,
      'never-logged-in': 2,
      'not-captured': 1,
      excluded: 1,
      'mail-only': 2,
    });
    assert.equal(r.generatedAt, NOW.toISOString());
    assert.equal(r.since, undefined);
  });

  it('the window drops mail before --since but keeps the accounts', async () => {
    const since = new Date('2026-11-16T00:00:00.000Z');
    const r = await leftoversReport(
      inputs({ relay: log.filter((e) => e.time >= since.toISOString()), since }),
    );
    assert.equal(r.since, since.toISOString());
    assert.equal(
      r.rows.find((x) => x.address === 'sales@example.org'),
      undefined,
    );
    assert.equal(r.rows.find((x) => x.address === 'dave@example.org')?.messages, 0);
    assert.equal(r.rows.find((x) => x.address === 'alerts@example.net')?.messages, 2);
    assert.equal(r.counts.failed, 1);
  });

  it('an address with only list mail gets the re-subscribe advice', async () => {
    const r = await leftoversReport(
      inputs({
        records: [],
        relay: [
          relay('2026-11-12T09:00:00.000Z', ['news@example.org'], {
            auto: ['list'],
            listId: '<a.example>',
          }),
        ],
      }),
    );
    assert.equal(r.rows.length, 1);
    assert.match(r.rows[0]!.action, /^only list mail: re-subscribe/);
  });

  it('nothing left: an empty report that says so', async () => {
    const r = await leftoversReport(inputs({ records: [records[0]!], relay: [] }));
    assert.deepEqual(r.rows, []);
    assert.equal(
      formatReport(r, leftoversView, 'table').trim().split('\n').pop(),
      'Nothing depends on the source any more.',
    );
  });
});

describe('leftovers rendering', async () => {
  const r = await leftoversReport(inputs());

  it('CSV: one header, one line per row, CRLF, RFC 4180 quoting', () => {
    const csv = formatReport(r, leftoversView, 'csv');
    assert.ok(csv.endsWith('\r\n'));
    const lines = csv.slice(0, -2).split('\r\n');
    assert.equal(lines.length, 1 + r.rows.length);
    assert.equal(
      lines[0],
      'address,status,state,cause,last_login,messages,first_seen,last_seen,senders,auto,list_ids,action',
    );
    assert.equal(
      lines.find((l) => l.startsWith('shared@')),
      'shared@example.org,excluded,excluded,"shared mailbox, moved by hand",,0,,,0,,,' +
        'excluded on purpose: move it by hand (or autoport accounts include it) before the source goes',
    );
    assert.equal(
      lines.find((l) => l.startsWith('sales@')),
      'sales@example.org,mail-only,,,,3,2026-11-10T09:00:00.000Z,2026-11-15T09:00:00.000Z,3,' +
        'auto-submitted:1 list:1 null-sender:1 precedence:1 vacation:1,<news.lists.example>,' +
        '"alias, list or forward on the source: recreate it on the destination before switching the source off"',
    );
  });

  it('JSON is the result object', () => {
    assert.deepEqual(
      JSON.parse(formatReport(r, leftoversView, 'json')),
      JSON.parse(JSON.stringify(r)),
    );
  });

  it('table: a header and one line per row, and the totals', () => {
    const text = formatReport(r, leftoversView, 'table');
    const lines = text.split('\n');
    assert.equal(lines[0], 'Still on the source');
    assert.match(lines[1]!, /^ADDRESS\s+STATUS\s+CAUSE\s+MAIL\s+FIRST\s+LAST\s+AUTO\s+ACTION$/);
    assert.match(
      text,
      /^sales@example\.org\s+mail-only\s+3\s+2026-11-10\s+2026-11-15\s+auto-submitted:1/m,
    );
    assert.match(
      text,
      /^8 leftover\(s\): failed 1, captured 1, never-logged-in 2, not-captured 1, excluded 1, mail-only 2$/m,
    );
  });
});
