/**
 * `migrateAccount` with the POP3 fallback against the real lab: a source Dovecot (read
 * over POP3 only: source.useImap false, or no source.imap at all) with its Postfix, and a
 * destination Dovecot provisioned through its passwd-file. The destination INBOX must hold
 * exactly the bytes the source's RETR gives, with INTERNALDATEs from Received:/Date:, the
 * UIDLs must be in the state file, the source must keep every message, and later runs
 * must neither copy nor duplicate anything (also after a crash between APPEND and the
 * record, and after a connection cut mid-RETR).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import nodemailer from 'nodemailer';
import { loadConfig } from '../../src/core/config/index.js';
import { parseEndpoint } from '../../src/core/config/endpoint.js';
import type { Config } from '../../src/core/config/types.js';
import { OperatorError } from '../../src/core/errors.js';
import { makeProvisioner } from '../../src/core/provision/index.js';
import type { LedgerEntry } from '../../src/core/transfer/types.js';
import { dryRun } from '../../src/core/transfer/dry-run.js';
import {
  migrateAccount,
  type MigrateDeps,
  type MigrateEvent,
} from '../../src/core/transfer/migrate-account.js';
import { Pop3Client } from '../../src/core/transfer/pop3/index.js';
import {
  binaryBytes,
  makeTempDir,
  openImap,
  removeDir,
  startLab,
  writeLabConfig,
  type Lab,
} from '../support/index.js';
import { startCutProxy } from './cut-proxy.js';
import { readStateSync } from '../support/state-file.js';
import { openStateAndLedger } from './migrate-support.js';

/** the destination's APPENDLIMIT (RFC 7889): carol's big message is over it */
const LIMIT = 1_000_000;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const crlf = (lines: string[]): Buffer => Buffer.from(lines.join('\r\n') + '\r\n', 'latin1');
/** the source's own INTERNALDATE, which POP3 cannot see: the copy must not end up with it */
const APPENDED_AT = new Date('2001-01-01T00:00:00Z');

interface Seed {
  bytes: Buffer;
  /** expected destination INTERNALDATE; undefined: checked against a time window */
  date?: Date;
}

const ALICE_SEEDS: Seed[] = [
  {
    // the top-most Received (the last hop, RFC 5321 4.4) wins over older hops and Date:
    bytes: crlf([
      'Received: from mx.example.org by store.example.org with LMTP id q1;',
      '\tMon, 04 Mar 2019 06:06:07 +0100',
      'Received: from client by mx.example.org; Mon, 04 Mar 2019 05:00:00 +0000',
      'Date: Sun, 03 Mar 2019 23:00:00 +0000',
      'Subject: received wins',
      '',
      '.a line that starts with a dot',
      '.',
      'end',
    ]),
    date: new Date('2019-03-04T05:06:07Z'),
  },
  {
    bytes: crlf(['Date: Fri, 31 Dec 2010 23:59:59 -0500', 'Subject: only Date', '', 'body']),
    date: new Date('2011-01-01T04:59:59Z'),
  },
  {
    bytes: Buffer.concat([
      crlf([
        'Received: from x by y; Tue, 16 Jun 2015 08:15:00 +0000',
        'Subject: 8-bit body',
        'Content-Type: text/plain; charset=iso-8859-1',
        'Content-Transfer-Encoding: 8bit',
        '',
      ]),
      Buffer.from(Array.from({ length: 100 }, (_, i) => 0x80 + i)),
      crlf(['', 'done']),
    ]),
    date: new Date('2015-06-16T08:15:00Z'),
  },
  { bytes: crlf(['Subject: no date header at all', '', 'when?']) },
];

function bigMessage(bytes = 300_000): Buffer {
  const b64 =
    binaryBytes(bytes, 11)
      .toString('base64')
      .match(/.{1,76}/g) ?? [];
  return crlf([
    'Received: from a by b; Wed, 01 Feb 2023 10:00:00 +0000',
    'Subject: big',
    'Content-Type: application/octet-stream',
    'Content-Transfer-Encoding: base64',
    '',
    ...b64,
  ]);
}

async function append(lab: Lab, user: { user: string; password: string }, msgs: Buffer[]) {
  const c = await openImap(lab.source, user);
  try {
    for (const m of msgs) await c.append('INBOX', m, [], APPENDED_AT);
  } finally {
    await c.logout();
  }
}

/** Deliver through the source's Postfix (real Received: fields) and wait for the LMTP delivery. */
async function deliver(lab: Lab, to: { user: string; password: string }, subject: string) {
  const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port: lab.mta.port,
    secure: false,
    ignoreTLS: true,
  });
  await transport.sendMail({ from: 'someone@example.net', to: to.user, subject, text: 'hi\n' });
  const c = await openImap(lab.source, to);
  try {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const lock = await c.getMailboxLock('INBOX');
      try {
        const found = await c.search({ subject }, { uid: true });
        if (Array.isArray(found) && found.length === 1) return;
      } finally {
        lock.release();
      }
      if (Date.now() > deadline) assert.fail(`"${subject}" not delivered (${lab.mta.logFile})`);
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    await c.logout();
  }
}

interface SourceView {
  count: number;
  uidls: string[];
  /** UIDL -> SHA-256 of RETR */
  hashes: Map<string, string>;
  bytes: Map<string, Buffer>;
}

/** The source inbox as an independent POP3 session sees it. */
async function readSource(lab: Lab, user: { user: string; password: string }): Promise<SourceView> {
  const pop = await Pop3Client.connect({
    host: lab.source.host,
    port: lab.source.ports.pop3,
    tls: 'none',
    user: user.user,
    password: user.password,
  });
  try {
    const { count } = await pop.stat();
    const view: SourceView = { count, uidls: [], hashes: new Map(), bytes: new Map() };
    for (const [n, uidl] of await pop.uidl()) {
      const b = await pop.retr(n);
      view.uidls.push(uidl);
      view.hashes.set(uidl, sha(b));
      view.bytes.set(uidl, b);
    }
    return view;
  } finally {
    await pop.quit();
  }
}

interface DestMessage {
  uid: number;
  hash: string;
  date: Date;
  seen: boolean;
}

async function readDestination(
  lab: Lab,
  user: { user: string; password: string },
): Promise<DestMessage[]> {
  const c = await openImap(lab.destination, user);
  try {
    const box = await c.mailboxOpen('INBOX', { readOnly: true });
    const out: DestMessage[] = [];
    if (box.exists > 0) {
      for await (const m of c.fetch(
        '1:*',
        { uid: true, source: true, internalDate: true, flags: true },
        { uid: false },
      )) {
        out.push({
          uid: m.uid,
          hash: sha(m.source!),
          date: new Date(m.internalDate!),
          seen: m.flags?.has('\\Seen') ?? false,
        });
      }
    }
    return out;
  } finally {
    await c.logout();
  }
}

const sorted = (xs: Iterable<string>): string[] => [...xs].sort();

describe('migrateAccount over POP3 (no IMAP on the source)', () => {
  let lab: Lab;
  let dir: string;
  let config: Config;
  let alice: { user: string; password: string };
  let bob: { user: string; password: string };
  let state: Awaited<ReturnType<typeof openStateAndLedger>>;
  let firstRun: { started: number; finished: number };

  before(async () => {
    lab = await startLab({ destinationAppendLimit: LIMIT });
    [alice, bob] = lab.users as [typeof alice, typeof bob];
    dir = makeTempDir('migrate-pop3');
    // the lab's source offers IMAP too: the config switches it off
    config = loadConfig(writeLabConfig(lab, dir, { source: { useImap: false } }));
    assert.equal(config.source.useImap, false);
    await append(
      lab,
      alice,
      ALICE_SEEDS.map((s) => s.bytes),
    );
    await deliver(lab, alice, 'through the MTA');
    await append(lab, bob, [crlf(['Subject: small', '', 'x']), bigMessage()]);
    state = await openStateAndLedger(dir);
  });

  after(async () => {
    await state?.close().catch(() => undefined);
    await lab?.stop();
    if (dir) removeDir(dir);
  });

  function deps(extra: Partial<MigrateDeps> = {}): MigrateDeps {
    return {
      config,
      store: state.store,
      ledger: state.ledger,
      provisioner: makeProvisioner(config.destination.provision),
      ...extra,
    };
  }

  test('a wrong password is refused at the source and never reaches the destination', async () => {
    await assert.rejects(
      migrateAccount({ address: alice.user, password: 'wrong' }, deps()),
      (err: unknown) => err instanceof OperatorError && err.code === 'EAUTH',
    );
    assert.doesNotMatch(readFileSync(lab.destination.passwdFile, 'utf8'), /alice@/);
    assert.equal((await state.store.get(alice.user))?.state, 'failed');
  });

  test('the dry run counts the inbox from POP3 LIST and changes nothing', async () => {
    const before = await readSource(lab, alice);
    const plan = await dryRun(
      { address: alice.user, password: alice.password },
      { config, store: state.store },
    );
    assert.equal(plan.folders.length, 1);
    const inbox = plan.folders[0]!;
    assert.deepEqual([inbox.source, inbox.destination], ['INBOX', 'INBOX']);
    assert.equal(inbox.messages, before.count);
    const retrBytes = [...before.bytes.values()].reduce((n, b) => n + b.length, 0);
    assert.equal(inbox.bytes, retrBytes, 'LIST sizes are the exact octet counts (RFC 1939 5)');
    assert.equal(inbox.alreadyCopied, 0);
    assert.equal(plan.totals.toCopy, before.count);
    assert.ok(plan.problems.some((p) => /POP3/.test(p) && /only the inbox/.test(p)));
    assert.ok(
      plan.problems.some((p) => /not provisioned/.test(p)),
      plan.problems.join('; '),
    );
    assert.doesNotMatch(readFileSync(lab.destination.passwdFile, 'utf8'), /alice@/);
  });

  test('copies the inbox byte for byte with dates from Received:/Date: and records the UIDLs', async () => {
    const source = await readSource(lab, alice);
    assert.equal(source.count, ALICE_SEEDS.length + 1);
    const events: MigrateEvent[] = [];
    const started = Date.now();
    const result = await migrateAccount(
      { address: alice.user, password: alice.password },
      deps({ onEvent: (e) => events.push(e) }),
    );
    firstRun = { started, finished: Date.now() };
    assert.equal(result.ok, true, JSON.stringify(result.errors));
    assert.equal(result.totals.copied, source.count);
    assert.equal(result.totals.failed, 0);
    assert.equal(result.folders[0]?.mode, 'pop3');
    assert.equal(result.verify?.ok, true);
    assert.equal(result.folders[0]?.verify?.hashed, source.count);
    assert.deepEqual(
      events.filter((e) => e.type === 'phase').map((e) => (e as { phase: string }).phase),
      ['provision', 'plan', 'copy'],
    );
    assert.ok(events.some((e) => e.type === 'progress' && e.progress.copied === source.count));
    assert.deepEqual(
      events.slice(-2).map((e) => e.type),
      ['folder-done', 'done'],
    );

    // the destination holds exactly the source's bytes, once each
    const dest = await readDestination(lab, alice);
    assert.deepEqual(sorted(dest.map((d) => d.hash)), sorted(source.hashes.values()));
    for (const seed of ALICE_SEEDS) {
      const m = dest.find((d) => d.hash === sha(seed.bytes));
      assert.ok(m, 'seeded message arrived byte for byte');
      if (seed.date) assert.equal(m.date.toISOString(), seed.date.toISOString());
      else {
        assert.ok(m.date.getTime() >= Math.floor(started / 1000) * 1000);
        assert.ok(m.date.getTime() <= firstRun.finished);
      }
      assert.notEqual(m.date.getTime(), APPENDED_AT.getTime());
    }
    // delivered by Postfix: the date of its Received: field, i.e. the delivery, minutes ago
    const seededHashes = new Set(ALICE_SEEDS.map((s) => sha(s.bytes)));
    const delivered = dest.find((d) => !seededHashes.has(d.hash));
    assert.ok(delivered);
    assert.ok(Math.abs(delivered.date.getTime() - started) < 5 * 60_000, String(delivered.date));
    assert.ok(
      dest.every((d) => !d.seen),
      'POP3 has no flags: every message arrives unread',
    );

    // the UIDLs are in the state file (on disk), each with the destination UID holding it
    await state.store.flush();
    const file = readStateSync(join(dir, 'state.json')); // the snapshot and its journal
    const rec = file.accounts[alice.user];
    assert.equal(rec?.state, 'migrated');
    const uidls = rec?.pop3Uidls ?? {};
    assert.deepEqual(sorted(Object.keys(uidls)), sorted(source.uidls));
    for (const [uidl, uid] of Object.entries(uidls))
      assert.equal(dest.find((d) => d.uid === uid)?.hash, source.hashes.get(uidl), uidl);

    // the ledger has one "copied" line per message, naming its UIDL
    await state.ledger.flush();
    const lines = readFileSync(state.ledgerPath, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as LedgerEntry)
      .filter((l) => l.account === alice.user);
    assert.deepEqual(
      sorted(lines.filter((l) => l.outcome === 'copied').map((l) => l.uidl ?? '')),
      sorted(source.uidls),
    );

    // the source still has every message
    const after = await readSource(lab, alice);
    assert.equal(after.count, source.count);
    assert.deepEqual(after.uidls, source.uidls);
  });

  test('a second run copies nothing; a full verify reads the source again and agrees', async () => {
    const result = await migrateAccount(
      { address: alice.user, password: alice.password },
      deps({ verify: 'all' }),
    );
    assert.equal(result.ok, true, JSON.stringify(result.errors));
    assert.deepEqual([result.totals.copied, result.totals.matched], [0, 0]);
    assert.equal(result.folders[0]?.verify?.hashed, ALICE_SEEDS.length + 1);
    assert.equal((await readDestination(lab, alice)).length, ALICE_SEEDS.length + 1);
  });

  test('a crash between APPEND and the record: the messages are matched, not appended again', async () => {
    const recorded = { ...(await state.store.get(alice.user))?.pop3Uidls };
    const lost = Object.keys(recorded).slice(0, 2);
    await state.store.update(alice.user, (rec) => {
      for (const u of lost) delete rec.pop3Uidls?.[u];
    });
    const result = await migrateAccount({ address: alice.user, password: alice.password }, deps());
    assert.equal(result.ok, true, JSON.stringify(result.errors));
    assert.deepEqual([result.totals.copied, result.totals.matched], [0, 2]);
    assert.deepEqual((await state.store.get(alice.user))?.pop3Uidls, recorded);
    assert.equal((await readDestination(lab, alice)).length, ALICE_SEEDS.length + 1);
  });

  test('the destination INBOX recreated (new UIDVALIDITY): everything matched by content', async () => {
    const recorded = { ...(await state.store.get(alice.user))?.pop3Uidls };
    await state.store.update(alice.user, (rec) => {
      const inbox = rec.folders.INBOX;
      if (inbox) inbox.destUidValidity = (inbox.destUidValidity ?? 0) + 1;
    });
    const warnings: string[] = [];
    const result = await migrateAccount(
      { address: alice.user, password: alice.password },
      deps({ onEvent: (e) => void (e.type === 'warning' && warnings.push(e.message)) }),
    );
    assert.equal(result.ok, true, JSON.stringify(result.errors));
    assert.ok(
      warnings.some((w) => /UIDVALIDITY/.test(w)),
      warnings.join('; '),
    );
    assert.deepEqual([result.totals.copied, result.totals.matched], [0, ALICE_SEEDS.length + 1]);
    assert.deepEqual((await state.store.get(alice.user))?.pop3Uidls, recorded);
    assert.equal((await readDestination(lab, alice)).length, ALICE_SEEDS.length + 1);
  });

  test('a message over the destination APPENDLIMIT: failed with the reason, the rest copied', async () => {
    const carol = { user: 'carol@example.org', password: 'carol-secret' };
    await lab.addSourceUser(carol.user, carol.password);
    const small = crlf(['Date: Mon, 01 May 2023 09:00:00 +0000', 'Subject: small', '', 'x']);
    await append(lab, carol, [small, bigMessage(800_000)]);
    const result = await migrateAccount({ address: carol.user, password: carol.password }, deps());
    assert.equal(result.ok, false);
    assert.deepEqual([result.totals.copied, result.totals.failed], [1, 1]);
    assert.equal(result.verify?.byCause.failed, 1);
    assert.match(result.errors.join(' '), /^$/, 'a refused message is no account error');
    await state.ledger.flush();
    const failed = readFileSync(state.ledgerPath, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as LedgerEntry)
      .filter((l) => l.account === carol.user && l.outcome === 'failed');
    assert.equal(failed.length, 1);
    assert.match(failed[0]?.reason ?? '', /size|large|limit/i);
    assert.ok(failed[0]?.uidl);
    assert.deepEqual(Object.keys((await state.store.get(carol.user))?.pop3Uidls ?? {}).length, 1);
    assert.deepEqual(
      (await readDestination(lab, carol)).map((d) => d.hash),
      [sha(small)],
    );

    // a later plan counts what is recorded (Dovecot 2.3 announces no APPENDLIMIT to plan with)
    const plan = await dryRun(
      { address: carol.user, password: carol.password },
      { config, store: state.store },
    );
    assert.deepEqual(
      [plan.folders[0]?.messages, plan.folders[0]?.alreadyCopied, plan.totals.toCopy],
      [2, 1, 1],
    );
  });

  test('without source.imap, and with the connection cut mid-RETR: retried, nothing doubled', async () => {
    const cut = await startCutProxy(
      { host: lab.source.host, port: lab.source.ports.pop3 },
      { afterBytes: 100_000, cuts: 1 },
    );
    try {
      const popOnly: Config = {
        ...config,
        source: {
          ...config.source,
          imap: undefined,
          useImap: false,
          pop3: parseEndpoint(`pop3://127.0.0.1:${cut.port}?tls=none`),
        },
      };
      const warnings: string[] = [];
      const result = await migrateAccount(
        { address: bob.user, password: bob.password },
        {
          ...deps({ config: popOnly }),
          onEvent: (e) => void (e.type === 'warning' && warnings.push(e.message)),
        },
      );
      assert.equal(cut.cut, 1, 'the proxy cut one connection');
      assert.ok(
        warnings.some((w) => /retrying/.test(w)),
        warnings.join('; '),
      );
      assert.equal(result.ok, true, JSON.stringify(result.errors));
      const source = await readSource(lab, bob);
      const dest = await readDestination(lab, bob);
      assert.deepEqual(sorted(dest.map((d) => d.hash)), sorted(source.hashes.values()));
      assert.deepEqual(
        sorted(Object.keys((await state.store.get(bob.user))?.pop3Uidls ?? {})),
        sorted(source.uidls),
      );
    } finally {
      await cut.close();
    }
  });
});
