/**
 * report progress over fabricated state, ledger and relay log; the CSV/JSON shapes;
 * RFC 4180 quoting; --since parsing; and reading real log files (rotated, torn lines).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { RelayLogEntry } from '../../src/core/smtp/relay-log.js';
import {
  causeKey,
  parseSince,
  progressReport,
  progressView,
  readReportInputs,
  type LogEntries,
  type ReportInputs,
} from '../../src/core/reports/index.js';
import { csvField, formatReport, toCsv } from '../../src/cli/render-report.js';
import { OperatorError } from '../../src/core/errors.js';
import { openJsonStore } from '../../src/core/state/json-store.js';
import { accountRecord } from '../support/state-helpers.js';
import type { LedgerEntry } from '../../src/core/transfer/types.js';

const NOW = new Date('2026-11-20T12:00:00.000Z');

const rec = accountRecord;

function led(
  ts: string,
  account: string,
  outcome: LedgerEntry['outcome'],
  extra: Partial<LedgerEntry> = {},
): LedgerEntry {
  return { ts, account, folder: 'INBOX', uidValidity: 1, uid: 1, outcome, ...extra };
}

function relay(time: string, route: 'source' | 'destination'): RelayLogEntry {
  return {
    time,
    session: 's',
    listener: 'smtp',
    client: '192.0.2.1',
    from: 'x@remote.example',
    recipients: [{ address: 'a@example.org', reason: 'first-login' }],
    size: 10,
    route,
    backend: 'b',
    reply: '250 ok',
    accepted: true,
    auto: [],
    durationMs: 1,
  };
}

const records = [
  rec('a@example.org', 'migrated'),
  rec('b@example.org', 'migrated'),
  rec('c@example.org', 'captured'),
  rec('d@example.org', 'failed', { reason: 'destination refused APPEND of 3 messages in "INBOX"' }),
  rec('e@example.org', 'failed', { reason: 'destination refused APPEND of 12 messages in "Sent"' }),
  rec('f@example.org', 'failed', {
    errors: [
      { at: '2026-11-02T00:00:00Z', cause: 'login', detail: 'wrong password for f@example.org' },
    ],
  }),
  rec('g@example.org', 'excluded'),
  rec('h@example.org', 'unknown'),
];

// a@ copies 10:00:00..10:00:10, b@ 10:00:05..10:00:20 (overlap), then a@ again at 11:00:00..11:00:10
const ledger: LedgerEntry[] = [
  led('2026-11-19T10:00:00.000Z', 'a@example.org', 'copied', { size: 1000 }),
  led('2026-11-19T10:00:10.000Z', 'a@example.org', 'copied', { size: 3000 }),
  led('2026-11-19T10:00:05.000Z', 'b@example.org', 'matched'),
  led('2026-11-19T10:00:20.000Z', 'b@example.org', 'copied', { size: 6000 }),
  led('2026-11-19T10:00:21.000Z', 'b@example.org', 'failed', {
    reason: 'NO [LIMIT] message too big (52428800 bytes)',
  }),
  led('2026-11-19T10:00:22.000Z', 'b@example.org', 'failed', {
    reason: 'NO [LIMIT] message too big (99999999 bytes)',
  }),
  led('2026-11-19T10:00:22.000Z', 'b@example.org', 'skipped', { reason: 'duplicate' }),
  led('2026-11-19T10:00:22.000Z', 'b@example.org', 'flags'),
];

const relayLog = [
  relay('2026-11-18T09:00:00.000Z', 'source'),
  relay('2026-11-18T10:00:00.000Z', 'source'),
  relay('2026-11-18T11:00:00.000Z', 'source'),
  relay('2026-11-18T12:00:00.000Z', 'destination'),
  relay('2026-11-19T23:59:59.999Z', 'destination'),
];

async function collect<T>(entries: LogEntries<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const e of entries) out.push(e);
  return out;
}

function inputs(over: Partial<ReportInputs> = {}): ReportInputs {
  return { records, relay: relayLog, ledger, domains: ['example.org'], now: NOW, ...over };
}

describe('progressReport', async () => {
  const r = await progressReport(inputs());

  it('counts accounts by state', () => {
    assert.deepEqual(r.accounts, {
      total: 8,
      byState: { unknown: 1, captured: 1, transferring: 0, migrated: 2, failed: 3, excluded: 1 },
    });
  });

  it('sums the ledger and measures the rate over the time something was copied', () => {
    // busy: union of [10:00:00, 10:00:10] and [10:00:05, 10:00:22] = 22 s
    assert.deepEqual(r.moved, {
      copied: 3,
      matched: 1,
      skipped: 1,
      failed: 2,
      bytes: 10_000,
      accounts: 2,
      busySeconds: 22,
      bytesPerSecond: 10_000 / 22,
      messagesPerMinute: (3 * 60) / 22,
    });
  });

  it('groups failed accounts by the shape of their cause, and failed messages by reason', () => {
    assert.deepEqual(r.failures, [
      {
        cause: 'destination refused APPEND of N messages in "..."',
        accounts: 2,
        examples: ['d@example.org', 'e@example.org'],
      },
      { cause: 'wrong password for <address>', accounts: 1, examples: ['f@example.org'] },
    ]);
    assert.deepEqual(r.messageFailures, [
      { reason: 'NO [LIMIT] message too big (N bytes)', messages: 2 },
    ]);
  });

  it('gives the share of SMTP still going to the source per UTC day', () => {
    assert.deepEqual(r.smtpByDay, [
      { day: '2026-11-18', source: 3, destination: 1, sourceShare: 0.75 },
      { day: '2026-11-19', source: 0, destination: 1, sourceShare: 0 },
    ]);
  });

  it('shows the switch locks: p50, p95, max, share within 2 s, in the window', async () => {
    const locked = (address: string, ms: number, at = '2026-11-20T10:00:00.000Z') =>
      rec(address, 'migrated', {
        transfer: {
          messages: 10,
          bytes: 100,
          copied: 10,
          skipped: 0,
          failed: 0,
          lock: { at, ms, passes: 2, copied: 1, bytes: 10, flags: 0, expunged: 0 },
        },
      });
    // 20 moves of 100, 200, ... 2000 ms, one of 5000 ms, one before the window
    const moved = Array.from({ length: 20 }, (_, i) => locked(`m${i}@example.org`, (i + 1) * 100));
    moved.push(locked('slow@example.org', 5000));
    moved.push(locked('old@example.org', 60_000, '2026-10-01T00:00:00.000Z'));
    moved.push(rec('never@example.org', 'captured'));
    const since = new Date('2026-11-01T00:00:00Z');
    const l = (await progressReport(inputs({ ledger: [], relay: [], records: moved, since })))
      .locks;
    assert.deepEqual(l, {
      moves: 21,
      p50Ms: 1100,
      p95Ms: 2000,
      maxMs: 5000,
      withinTarget: 20 / 21,
      finalPassCopied: 21,
    });
    const all = await progressReport(inputs({ ledger: [], relay: [], records: moved }));
    assert.equal(all.locks.maxMs, 60_000);
    const text = formatReport(all, progressView, 'table');
    assert.match(text, /within 2 s\s+90\.9%/);
    assert.match(text, /p95\s+5\.00 s/);
    const none = await progressReport(inputs({ ledger: [], relay: [], records: [] }));
    assert.equal(none.locks.p50Ms, null);
    assert.match(formatReport(none, progressView, 'table'), /within 2 s\s+n\/a/);
  });

  it('no ledger: no rate rather than a division by zero', async () => {
    const empty = await progressReport(inputs({ ledger: [], relay: [], records: [] }));
    assert.equal(empty.moved.bytesPerSecond, null);
    assert.equal(empty.moved.messagesPerMinute, null);
    assert.equal(empty.accounts.total, 0);
    assert.deepEqual(empty.smtpByDay, []);
    assert.match(formatReport(empty, progressView, 'table'), /rate while copying\s+n\/a/);
  });

  it('CSV is one tidy table: section,key,metric,value', () => {
    const lines = formatReport(r, progressView, 'csv').split('\r\n');
    assert.equal(lines[0], 'section,key,metric,value');
    assert.ok(lines.includes('accounts,failed,accounts,3'));
    assert.ok(lines.includes('moved,,bytes,10000'));
    assert.ok(lines.includes('moved,,busy_seconds,22'));
    assert.ok(
      lines.includes('failures,"destination refused APPEND of N messages in ""...""",accounts,2'),
    );
    assert.ok(lines.includes('smtp,2026-11-18,source_share,0.75'));
    assert.equal(lines.at(-1), '');
  });

  it('JSON is the result object', () => {
    assert.deepEqual(
      JSON.parse(formatReport(r, progressView, 'json')),
      JSON.parse(JSON.stringify(r)),
    );
  });

  it('table shows each section', () => {
    const t = formatReport(r, progressView, 'table');
    assert.match(t, /^Accounts \(8\)$/m);
    assert.match(t, /^failed\s+3$/m);
    assert.match(t, /^bytes copied\s+9\.8 KiB \(10000\)$/m);
    assert.match(t, /^2026-11-18\s+3\s+1\s+75\.0%$/m);
  });
});

describe('CSV quoting (RFC 4180 section 2)', () => {
  it('quotes only fields with a comma, a quote, CR or LF, and doubles quotes', () => {
    assert.equal(csvField('plain'), 'plain');
    assert.equal(csvField('a,b'), '"a,b"');
    assert.equal(csvField('say "hi"'), '"say ""hi"""');
    assert.equal(csvField('two\r\nlines'), '"two\r\nlines"');
    assert.equal(csvField('lf\nonly'), '"lf\nonly"');
    assert.equal(csvField(undefined), '');
    assert.equal(csvField(null), '');
    assert.equal(csvField(0.1 + 0.2), String(0.1 + 0.2));
    // formula injection: text a spreadsheet would evaluate is defused, numbers are not
    assert.equal(csvField('=HYPERLINK("http://x","y")'), `"'=HYPERLINK(""http://x"",""y"")"`);
    assert.equal(csvField('+1-2'), "'+1-2");
    assert.equal(csvField('-cmd'), "'-cmd");
    assert.equal(csvField('@SUM(A1)'), "'@SUM(A1)");
    assert.equal(csvField('\tx'), "'\tx");
    assert.equal(csvField(-3), '-3');
    assert.equal(csvField('a=b'), 'a=b');
    assert.equal(toCsv({ header: ['a', 'b'], rows: [['1', 'x,y']] }), 'a,b\r\n1,"x,y"\r\n');
  });
});

describe('causeKey', () => {
  it('folds numbers, addresses and quoted names', () => {
    assert.equal(
      causeKey(`can't open "Sent"  for bob@x.example (42)`),
      `can't open "..." for <address> (N)`,
    );
    assert.equal(
      causeKey('quota exceeded for a@b.c after 12 messages'),
      'quota exceeded for <address> after N messages',
    );
    assert.equal(causeKey('x'.repeat(500)).length, 160);
  });
});

describe('parseSince', () => {
  it('takes spans back from now', () => {
    assert.equal(parseSince('7d', NOW).toISOString(), '2026-11-13T12:00:00.000Z');
    assert.equal(parseSince('12h', NOW).toISOString(), '2026-11-20T00:00:00.000Z');
    assert.equal(parseSince('30m', NOW).toISOString(), '2026-11-20T11:30:00.000Z');
    assert.equal(parseSince('2w', NOW).toISOString(), '2026-11-06T12:00:00.000Z');
  });
  it('takes ISO dates (UTC midnight) and times', () => {
    assert.equal(parseSince('2026-11-01', NOW).toISOString(), '2026-11-01T00:00:00.000Z');
    assert.equal(parseSince('2026-11-01T08:00Z', NOW).toISOString(), '2026-11-01T08:00:00.000Z');
    assert.equal(
      parseSince('2026-11-01T08:00:00+02:00', NOW).toISOString(),
      '2026-11-01T06:00:00.000Z',
    );
  });
  it('refuses anything else with a hint', () => {
    for (const bad of ['', 'yesterday', '7', '7y', '2026-13-45', '-1d', '1e9d']) {
      assert.throws(
        () => parseSince(bad, NOW),
        (err: unknown) =>
          err instanceof OperatorError && err.code === 'EUSAGE' && /7d/.test(err.hint),
        bad,
      );
    }
  });
});

describe('readReportInputs', () => {
  it('reads rotated relay logs and the ledger beside the state, skips junk, applies the window', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'ap-report-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const line = (o: object): string => `${JSON.stringify(o)}\n`;
    writeFileSync(
      join(dir, 'smtp-relay.jsonl.1'),
      line(relay('2026-11-10T00:00:00.000Z', 'source')),
    );
    writeFileSync(
      join(dir, 'smtp-relay.jsonl'),
      line(relay('2026-11-18T00:00:00.000Z', 'source')) +
        'not json\n' +
        line({ time: '2026-11-18T00:00:00.000Z', route: 'elsewhere', recipients: [] }) +
        line(relay('2026-11-19T00:00:00.000Z', 'destination')) +
        '{"torn',
    );
    writeFileSync(
      join(dir, 'ledger.jsonl'),
      line(led('2026-11-09T00:00:00.000Z', 'a@example.org', 'copied', { size: 5 })) +
        line(led('2026-11-19T00:00:00.000Z', 'a@example.org', 'copied', { size: 7 })) +
        line({ ts: '2026-11-19T00:00:00.000Z', nonsense: true }),
    );
    const statePath = join(dir, 'state.json');
    const writer = await openJsonStore(statePath, { saveDelayMs: 1 });
    await writer.upsert('a@example.org', { state: 'migrated' });
    await writer.close();
    const store = await openJsonStore(statePath, { readOnly: true });
    t.after(() => store.close());

    const all = await readReportInputs({
      store,
      stateDir: dir,
      logDir: dir,
      domains: ['example.org'],
      now: NOW,
    });
    assert.deepEqual(
      (await collect(all.relay)).map((e) => e.time),
      ['2026-11-10T00:00:00.000Z', '2026-11-18T00:00:00.000Z', '2026-11-19T00:00:00.000Z'],
    );
    assert.equal((await collect(all.ledger)).length, 2);
    assert.deepEqual(
      all.records.map((r) => r.address),
      ['a@example.org'],
    );

    const since = new Date('2026-11-15T00:00:00.000Z');
    const win = await readReportInputs({
      store,
      stateDir: dir,
      logDir: dir,
      domains: ['example.org'],
      now: NOW,
      since,
    });
    assert.equal((await collect(win.relay)).length, 2);
    assert.deepEqual(
      (await collect(win.ledger)).map((e) => e.size),
      [7],
    );
    assert.equal(win.since, since);
  });

  it('missing logs are an empty window, not an error', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'ap-report-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const statePath = join(dir, 'state.json');
    const store = await openJsonStore(statePath, { readOnly: true });
    t.after(() => store.close());
    const r = await readReportInputs({
      store,
      stateDir: dir,
      logDir: join(dir, 'logs'),
      domains: ['example.org'],
      now: NOW,
    });
    assert.deepEqual([r.records, await collect(r.relay), await collect(r.ledger)], [[], [], []]);
  });
});
