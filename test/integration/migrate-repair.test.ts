/**
 * Repair of a lost destination mailbox (issue #12): `autoport migrate` run again after the
 * destination lost mail. A folder recreated on the destination (new UIDVALIDITY) is filled
 * again, matched by content so nothing is doubled; messages expunged on the destination
 * come back while the account is not yet migrated or with --repair; once the account is
 * migrated, what the user deleted on the destination stays deleted.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { openJsonStore } from '../../src/core/state/json-store.js';
import {
  bulkCorpus,
  loadBulk,
  makeTempDir,
  openImap,
  removeDir,
  startDovecot,
  type DovecotInstance,
} from '../support/index.js';
import { assertSameMail, readMailbox } from './migrate-support.js';

const ROOT = join(import.meta.dirname, '..', '..');
const alice = { user: 'alice@example.org', password: 'alice-secret' };
const master = { user: 'admin', password: 'master-secret' };

interface RunResult {
  code: number | null;
  stderr: string;
  result: {
    ok: boolean;
    totals: { copied: number; expunged: number };
    verify?: { ok: boolean; byCause: Record<string, number> };
    folders: { source: string; copied: number; restored?: number; expunged: number }[];
  };
}

describe('migrate again after the destination lost mail', () => {
  let src: DovecotInstance;
  let dst: DovecotInstance;
  let dir: string;
  let config: string;
  const corpus = bulkCorpus({
    count: 300,
    avgSize: 3000,
    seed: 12,
    folders: ['INBOX', 'Archive', 'lists/dev'],
  });
  const count = (path: string): number =>
    corpus.folders.find((f) => f.path === path)?.messages.length ?? 0;

  function cli(extra: string[]): { status: number | null; stdout: string; stderr: string } {
    return spawnSync(
      process.execPath,
      [
        join(ROOT, 'bin', 'run.js'),
        'migrate',
        alice.user,
        '--password-stdin',
        '--verify',
        'all',
        '--config',
        config,
        ...extra,
      ],
      { input: alice.password, encoding: 'utf8', timeout: 120_000 },
    );
  }

  function migrate(...extra: string[]): RunResult {
    const r = cli(['--json', ...extra]);
    assert.ok(r.stdout, `no result (exit ${r.status}): ${r.stderr}`);
    return {
      code: r.status,
      stderr: r.stderr,
      result: JSON.parse(r.stdout) as RunResult['result'],
    };
  }

  const folderOf = (r: RunResult, source: string): RunResult['result']['folders'][number] => {
    const f = r.result.folders.find((x) => x.source === source);
    assert.ok(f, `no folder ${source} in the result`);
    return f;
  };

  async function setState(state: 'failed' | 'migrated'): Promise<void> {
    const store = await openJsonStore(join(dir, 'state.json'));
    try {
      store.update(alice.user, (rec) => {
        rec.state = state;
      });
    } finally {
      await store.close();
    }
  }

  async function accountState(): Promise<string | undefined> {
    const store = await openJsonStore(join(dir, 'state.json'));
    try {
      return store.get(alice.user)?.state;
    } finally {
      await store.close();
    }
  }

  /** Expunge the destination messages at these sequence numbers, as a mail client would. */
  async function expungeOnDestination(mailbox: string, seqs: string): Promise<void> {
    const client = await openImap(dst, alice);
    try {
      await client.mailboxOpen(mailbox);
      await client.messageDelete(seqs, { uid: false });
    } finally {
      await client.logout().catch(() => client.close());
    }
  }

  before(async () => {
    assert.ok(
      existsSync(join(ROOT, 'dist', 'commands', 'migrate.js')),
      'dist/ is missing: run `npm run build` (npm test does)',
    );
    [src, dst] = await Promise.all([
      startDovecot({ name: 'repair-src', users: [alice] }),
      startDovecot({ name: 'repair-dst', users: [], master, scheme: 'SHA512-CRYPT' }),
    ]);
    dir = makeTempDir('migrate-repair');
    await loadBulk(src, alice.user, corpus);
    writeFileSync(join(dir, 'master.pw'), master.password, { mode: 0o600 });
    config = join(dir, 'autoport.yaml');
    writeFileSync(
      config,
      stringify({
        source: { imap: src.urls.imap },
        destination: {
          imap: dst.urls.imap,
          provision: { kind: 'passwd-file', path: dst.passwdFile, scheme: 'SHA512-CRYPT' },
          master: { user: master.user, passwordFile: join(dir, 'master.pw') },
        },
        listen: { imap: '127.0.0.1:0' },
        domains: ['example.org'],
        state: join(dir, 'state.json'),
        keyFile: join(dir, 'autoport.key'),
      }),
    );
    const first = migrate();
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.result.totals.copied, 300);
    assert.equal(await accountState(), 'migrated');
  });
  after(async () => {
    await Promise.all([src?.stop(), dst?.stop()]);
    if (dir) removeDir(dir);
  });

  test('(a) a folder deleted and recreated on the destination is filled again, each message once', async () => {
    const archive = dst.mailboxName('Archive');
    const before = await readMailbox(dst, alice, archive);
    await dst.doveadm(['mailbox', 'delete', '-u', alice.user, archive]);
    await dst.doveadm(['mailbox', 'create', '-u', alice.user, archive]);
    // two messages are already back in the new folder (the user restored them from a
    // backup): they must be matched by content, not copied a second time
    const client = await openImap(dst, alice);
    try {
      for (const m of corpus.folders.find((f) => f.path === 'Archive')!.messages.slice(0, 2))
        await client.append(archive, m.raw, m.flags, m.internalDate);
    } finally {
      await client.logout().catch(() => client.close());
    }

    const r = migrate();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.result.ok, true);
    assert.equal(r.result.verify?.ok, true, JSON.stringify(r.result.verify));
    // the two already there are bound by content; only the others are written
    assert.equal(folderOf(r, archive).copied, count('Archive') - 2);
    assert.equal(folderOf(r, archive).restored, count('Archive') - 2);
    assert.equal(r.result.totals.copied, count('Archive') - 2, 'other folders untouched');
    assert.deepEqual(await readMailbox(dst, alice, archive), before);
    await assertSameMail(corpus, src, dst, alice);
  });

  test('(c) on a migrated account, messages the user deleted on the destination stay deleted', async () => {
    await expungeOnDestination('INBOX', '1:5');
    const left = await readMailbox(dst, alice, 'INBOX');
    assert.equal(left.length, count('INBOX') - 5);

    const r = migrate();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.result.verify?.ok, true, JSON.stringify(r.result.verify));
    assert.equal(r.result.verify?.byCause.deleted, 5, JSON.stringify(r.result.verify));
    assert.equal(r.result.totals.copied, 0);
    assert.deepEqual(await readMailbox(dst, alice, 'INBOX'), left);
    // and not on the run after that either
    const again = migrate();
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.result.totals.copied, 0);
    assert.deepEqual(await readMailbox(dst, alice, 'INBOX'), left);
    // the operator is told what was left deleted and how to bring it back
    await expungeOnDestination('INBOX', '1');
    const human = cli([]);
    assert.equal(human.status, 0, human.stderr);
    assert.match(human.stdout, /INBOX: 1 messages deleted on the destination .* --repair/);
    assert.equal((await readMailbox(dst, alice, 'INBOX')).length, count('INBOX') - 6);
  });

  test('(b) before the account is migrated, mail expunged on the destination comes back once', async () => {
    const dev = dst.mailboxName('lists/dev');
    await expungeOnDestination(dev, '3:12');
    // INBOX also holds the user's deletions from (c): the full source listing that restoring
    // needs must still leave those out
    await expungeOnDestination('INBOX', '20:23');
    // as after a run that ended failed: the destination is not yet the user's mailbox
    await setState('failed');

    const r = migrate();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.result.verify?.ok, true, JSON.stringify(r.result.verify));
    assert.equal(folderOf(r, dev).copied, 10);
    assert.equal(folderOf(r, dev).restored, 10);
    assert.equal(folderOf(r, 'INBOX').copied, 4);
    assert.equal(r.result.totals.copied, 14);
    assert.equal(r.result.verify?.byCause.deleted, 6, 'the deletions of (c) are still respected');
    assert.equal((await readMailbox(dst, alice, dev)).length, count('lists/dev'));
    assert.equal((await readMailbox(dst, alice, 'INBOX')).length, count('INBOX') - 6);
    assert.equal(await accountState(), 'migrated');
  });

  test('(b) --repair on a migrated account restores what the user deleted, each message once', async () => {
    const r = migrate('--repair');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.result.verify?.ok, true, JSON.stringify(r.result.verify));
    assert.equal(r.result.verify?.byCause.deleted, undefined);
    assert.equal(folderOf(r, 'INBOX').copied, 6);
    assert.equal(r.result.totals.copied, 6);
    await assertSameMail(corpus, src, dst, alice);
  });

  test('(d) a folder deleted on the destination of a migrated account comes back whole, deletions in it too', async () => {
    const archive = dst.mailboxName('Archive');
    await expungeOnDestination(archive, '1:3');
    const kept = migrate();
    assert.equal(kept.code, 0, kept.stderr);
    assert.equal(kept.result.verify?.byCause.deleted, 3);
    // not recreated by hand: the run creates it from the plan, with a new UIDVALIDITY
    await dst.doveadm(['mailbox', 'delete', '-u', alice.user, archive]);

    const r = migrate();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.result.verify?.ok, true, JSON.stringify(r.result.verify));
    assert.equal(r.result.verify?.byCause.deleted, undefined);
    assert.equal(folderOf(r, archive).copied, count('Archive'));
    assert.equal(r.result.totals.copied, count('Archive'));
    await assertSameMail(corpus, src, dst, alice);
  });
});
