/**
 * `migrateAccount` between two real Dovecots: the standard corpus arrives byte for byte with
 * flags, keywords and dates (checked by reading both servers independently), a second run
 * transfers only what changed (new mail, flag changes, expunges), and a source with
 * Courier's layout ('.' and "INBOX.") maps onto the destination's '/'.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { makeProvisioner } from '../../src/core/provision/index.js';
import { migrateAccount, type MigrateEvent } from '../../src/core/transfer/migrate-account.js';
import {
  loadCorpus,
  makeMessage,
  makeTempDir,
  openImap,
  removeDir,
  standardCorpus,
  startDovecot,
  type DovecotInstance,
} from '../support/index.js';
import {
  assertSameMail,
  labConfigFor,
  openStateAndLedger,
  readMailbox,
} from './migrate-support.js';

const alice = { user: 'alice@example.org', password: 'alice-secret' };
const req = { address: alice.user, password: alice.password };
const master = { user: 'admin', password: 'master-secret' };

describe('migrate: standard corpus, Dovecot layout, then incremental', () => {
  let src: DovecotInstance;
  let dst: DovecotInstance;
  let dir: string;
  const corpus = standardCorpus();

  before(async () => {
    [src, dst] = await Promise.all([
      startDovecot({ name: 'mig-src', users: [alice] }),
      startDovecot({ name: 'mig-dst', users: [], master, scheme: 'SHA512-CRYPT' }),
    ]);
    dir = makeTempDir('migrate');
    await loadCorpus(src, alice.user, alice.password, corpus);
  });
  after(async () => {
    await Promise.all([src?.stop(), dst?.stop()]);
    if (dir) removeDir(dir);
  });

  test('first run copies every folder and message; both servers then agree', async () => {
    const config = labConfigFor(src, dst, dir);
    const st = await openStateAndLedger(dir);
    const events: MigrateEvent[] = [];
    try {
      const result = await migrateAccount(req, {
        config,
        store: st.store,
        ledger: st.ledger,
        provisioner: makeProvisioner(config.destination.provision),
        onEvent: (e) => events.push(e),
        verify: 'all',
      });
      const total = corpus.folders.reduce((n, f) => n + f.messages.length, 0);
      assert.equal(result.ok, true, JSON.stringify(result.errors));
      assert.equal(result.totals.copied, total);
      assert.equal(result.totals.failed, 0);
      assert.equal(result.verify?.ok, true);
      assert.deepEqual(result.droppedKeywords, []);
      const rec = await st.store.get(alice.user);
      assert.equal(rec?.state, 'migrated');
      assert.equal(rec?.transfer?.copied, total);
      assert.ok(events.some((e) => e.type === 'plan'));
      assert.ok(events.some((e) => e.type === 'progress'));
    } finally {
      await st.close();
    }
    await assertSameMail(corpus, src, dst, alice);
    // the user's own password works on the destination (provisioned, not only the master)
    const c = await openImap(dst, alice);
    await c.logout();
    const ledger = readFileSync(`${dir}/ledger.jsonl`, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { outcome: string });
    assert.equal(
      ledger.filter((l) => l.outcome === 'copied').length,
      corpus.folders.reduce((n, f) => n + f.messages.length, 0),
    );
  });

  test('second run transfers only the changes: new mail, flags, expunges', async () => {
    const client = await openImap(src, alice);
    try {
      await client.mailboxOpen('INBOX');
      await client.append(
        'INBOX',
        makeMessage({ subject: 'new after first run', size: 3000 }),
        ['\\Seen', 'later'],
        new Date('2025-01-02T03:04:05Z'),
      );
      await client.append(
        'INBOX',
        makeMessage({ subject: 'second new one' }),
        [],
        new Date('2025-01-03T03:04:05Z'),
      );
      await client.messageFlagsAdd('1', ['\\Flagged', 'changed-kw']);
      await client.messageFlagsRemove('2', ['\\Seen']);
      await client.messageDelete('3', { uid: true }); // UID EXPUNGE: leaves the corpus's own \Deleted message alone
      await client.mailboxOpen('a/b');
      await client.append('a/b', makeMessage({ subject: 'nested new' }), ['\\Answered']);
    } finally {
      await client.logout();
    }
    const config = labConfigFor(src, dst, dir);
    const st = await openStateAndLedger(dir);
    try {
      const result = await migrateAccount(req, {
        config,
        store: st.store,
        ledger: st.ledger,
        provisioner: makeProvisioner(config.destination.provision),
      });
      assert.equal(result.ok, true, JSON.stringify(result.errors));
      assert.equal(result.totals.copied, 3, 'only the three new messages are copied');
      assert.equal(result.totals.flagsUpdated, 2);
      assert.equal(result.totals.expunged, 1);
      const inbox = result.folders.find((f) => f.source === 'INBOX');
      assert.ok(
        inbox?.mode === 'qresync' || inbox?.mode === 'condstore',
        `incremental mode was ${inbox?.mode}`,
      );
    } finally {
      await st.close();
    }
    const [a, b] = await Promise.all([
      readMailbox(src, alice, 'INBOX'),
      readMailbox(dst, alice, 'INBOX'),
    ]);
    assert.deepEqual(b, a);
    const [c1, c2] = await Promise.all([
      readMailbox(src, alice, 'a/b'),
      readMailbox(dst, alice, 'a/b'),
    ]);
    assert.deepEqual(c2, c1);
  });

  test('a third run with a full listing (no modseqs) changes nothing', async () => {
    const config = labConfigFor(src, dst, dir, 1);
    const st = await openStateAndLedger(dir);
    try {
      const result = await migrateAccount(req, {
        config,
        store: st.store,
        ledger: st.ledger,
        tuning: { incremental: 'listing' },
      });
      assert.equal(result.ok, true, JSON.stringify(result.errors));
      assert.equal(
        result.totals.copied +
          result.totals.flagsUpdated +
          result.totals.expunged +
          result.totals.matched,
        0,
      );
      assert.ok(result.folders.every((f) => f.mode === 'listing'));
    } finally {
      await st.close();
    }
  });
});

describe('migrate: Courier layout source (".", "INBOX.") to Dovecot layout', () => {
  let src: DovecotInstance;
  let dst: DovecotInstance;
  let dir: string;
  const corpus = standardCorpus();

  before(async () => {
    [src, dst] = await Promise.all([
      startDovecot({ name: 'mig-csrc', users: [alice], layout: 'courier' }),
      startDovecot({ name: 'mig-cdst', users: [], master, scheme: 'SHA512-CRYPT' }),
    ]);
    dir = makeTempDir('migrate-courier');
    await loadCorpus(src, alice.user, alice.password, corpus);
  });
  after(async () => {
    await Promise.all([src?.stop(), dst?.stop()]);
    if (dir) removeDir(dir);
  });

  test('folders are mapped and every message arrives intact', async () => {
    const config = labConfigFor(src, dst, dir);
    const st = await openStateAndLedger(dir);
    try {
      const result = await migrateAccount(req, {
        config,
        store: st.store,
        ledger: st.ledger,
        provisioner: makeProvisioner(config.destination.provision),
      });
      assert.equal(result.ok, true, JSON.stringify(result.errors));
      assert.equal(result.verify?.ok, true);
    } finally {
      await st.close();
    }
    await assertSameMail(corpus, src, dst, alice);
  });
});
