/**
 * Repair of a lost destination mailbox (issue #12): `autoport migrate` run again after the
 * destination lost mail. A folder recreated on the destination (new UIDVALIDITY) is filled
 * again, matched by content so nothing is doubled; messages expunged on the destination
 * come back while the account was never migrated, or with --repair; once the account has
 * been migrated, what the user deleted on the destination stays deleted, also after a re-run
 * that was killed or failed. Driven through the CLI as the operator runs it (dist/ built).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { openJsonStore } from '../../src/core/state/json-store.js';
import type { AccountState } from '../../src/core/state/types.js';
import {
  bulkCorpus,
  loadBulk,
  makeMessage,
  makeTempDir,
  openImap,
  removeDir,
  startDovecot,
  type Corpus,
  type DovecotInstance,
  type DovecotOptions,
} from '../support/index.js';
import { assertSameMail, readMailbox } from './migrate-support.js';

const ROOT = join(import.meta.dirname, '..', '..');
const master = { user: 'admin', password: 'master-secret' };

interface MigrateJson {
  ok: boolean;
  totals: { copied: number; failed: number };
  verify?: { ok: boolean; byCause: Record<string, number> };
  folders: { source: string; copied: number; restored?: number }[];
}

/** Two Dovecots, a config, and `autoport migrate` for one user, run as a child process. */
function lab(
  name: string,
  user: { user: string; password: string },
  srcOpts: Partial<DovecotOptions> = {},
  dstOpts: Partial<DovecotOptions> = {},
) {
  const l = {
    src: undefined as unknown as DovecotInstance,
    dst: undefined as unknown as DovecotInstance,
    dir: '',
    config: '',
    async start(corpus: Corpus): Promise<void> {
      assert.ok(
        existsSync(join(ROOT, 'dist', 'commands', 'migrate.js')),
        'dist/ is missing: run `npm run build` (npm test does)',
      );
      [l.src, l.dst] = await Promise.all([
        startDovecot({ name: `${name}-src`, users: [user], ...srcOpts }),
        startDovecot({
          name: `${name}-dst`,
          users: [],
          master,
          scheme: 'SHA512-CRYPT',
          ...dstOpts,
        }),
      ]);
      l.dir = makeTempDir(name);
      await loadBulk(l.src, user.user, corpus);
      writeFileSync(join(l.dir, 'master.pw'), master.password, { mode: 0o600 });
      l.config = join(l.dir, 'autoport.yaml');
      writeFileSync(
        l.config,
        stringify({
          source: { imap: l.src.urls.imap },
          destination: {
            imap: l.dst.urls.imap,
            provision: { kind: 'passwd-file', path: l.dst.passwdFile, scheme: 'SHA512-CRYPT' },
            master: { user: master.user, passwordFile: join(l.dir, 'master.pw') },
          },
          listen: { imap: '127.0.0.1:0' },
          domains: ['example.org'],
          state: join(l.dir, 'state.json'),
          keyFile: join(l.dir, 'autoport.key'),
        }),
      );
    },
    async stop(): Promise<void> {
      await Promise.all([l.src?.stop(), l.dst?.stop()]);
      if (l.dir) removeDir(l.dir);
    },
    cli(extra: string[]): { status: number | null; stdout: string; stderr: string } {
      return spawnSync(
        process.execPath,
        [
          join(ROOT, 'bin', 'run.js'),
          'migrate',
          user.user,
          '--password-stdin',
          '--verify',
          'all',
          '--config',
          l.config,
          ...extra,
        ],
        { input: user.password, encoding: 'utf8', timeout: 120_000 },
      );
    },
    migrate(...extra: string[]): { code: number | null; stderr: string; result: MigrateJson } {
      const r = l.cli(['--json', ...extra]);
      assert.ok(r.stdout, `no result (exit ${r.status}): ${r.stderr}`);
      return { code: r.status, stderr: r.stderr, result: JSON.parse(r.stdout) as MigrateJson };
    },
    async state(set?: AccountState): Promise<AccountState | undefined> {
      const store = await openJsonStore(join(l.dir, 'state.json'));
      try {
        if (set) await store.update(user.user, (rec) => void (rec.state = set));
        return (await store.get(user.user))?.state;
      } finally {
        await store.close();
      }
    },
    /** Expunge messages at these sequence numbers, as a mail client would. */
    async expunge(inst: DovecotInstance, mailbox: string, seqs: string): Promise<void> {
      const client = await openImap(inst, user);
      try {
        await client.mailboxOpen(mailbox);
        await client.messageDelete(seqs, { uid: false });
      } finally {
        await client.logout().catch(() => client.close());
      }
    },
  };
  return l;
}

function folderOf(r: { result: MigrateJson }, source: string): MigrateJson['folders'][number] {
  const f = r.result.folders.find((x) => x.source === source);
  assert.ok(f, `no folder ${source} in the result`);
  return f;
}

describe('migrate again after the destination of a migrated account lost mail', () => {
  const alice = { user: 'alice@example.org', password: 'alice-secret' };
  const l = lab('repair', alice);
  const corpus = bulkCorpus({
    count: 300,
    avgSize: 3000,
    seed: 12,
    folders: ['INBOX', 'Archive', 'lists/dev'],
  });
  const count = (path: string): number =>
    corpus.folders.find((f) => f.path === path)?.messages.length ?? 0;

  before(async () => {
    await l.start(corpus);
    const first = l.migrate();
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.result.totals.copied, 300);
    assert.equal(await l.state(), 'migrated');
  });
  after(() => l.stop());

  test('(a) a folder deleted and recreated on the destination is filled again, each message once', async () => {
    const archive = l.dst.mailboxName('Archive');
    const before = await readMailbox(l.dst, alice, archive);
    await l.dst.doveadm(['mailbox', 'delete', '-u', alice.user, archive]);
    await l.dst.doveadm(['mailbox', 'create', '-u', alice.user, archive]);
    // two messages are already back in the new folder (the user restored them from a
    // backup): they must be matched by content, not copied a second time
    const client = await openImap(l.dst, alice);
    try {
      for (const m of corpus.folders.find((f) => f.path === 'Archive')!.messages.slice(0, 2))
        await client.append(archive, m.raw, m.flags, m.internalDate);
    } finally {
      await client.logout().catch(() => client.close());
    }

    const r = l.migrate();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.result.ok, true);
    assert.equal(r.result.verify?.ok, true, JSON.stringify(r.result.verify));
    // the two already there are bound by content; only the others are written
    assert.equal(folderOf(r, archive).copied, count('Archive') - 2);
    assert.equal(folderOf(r, archive).restored, count('Archive') - 2);
    assert.equal(r.result.totals.copied, count('Archive') - 2, 'other folders untouched');
    assert.deepEqual(await readMailbox(l.dst, alice, archive), before);
    await assertSameMail(corpus, l.src, l.dst, alice);
  });

  test('(c) messages the user deleted on the destination stay deleted, and the operator is told', async () => {
    await l.expunge(l.dst, 'INBOX', '1:5');
    const left = await readMailbox(l.dst, alice, 'INBOX');
    assert.equal(left.length, count('INBOX') - 5);

    const r = l.migrate();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.result.verify?.ok, true, JSON.stringify(r.result.verify));
    assert.equal(r.result.verify?.byCause.deleted, 5, JSON.stringify(r.result.verify));
    assert.equal(r.result.totals.copied, 0);
    assert.deepEqual(await readMailbox(l.dst, alice, 'INBOX'), left);
    const again = l.migrate();
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.result.totals.copied, 0);
    assert.deepEqual(await readMailbox(l.dst, alice, 'INBOX'), left);

    await l.expunge(l.dst, 'INBOX', '1');
    const human = l.cli([]);
    assert.equal(human.status, 0, human.stderr);
    assert.match(human.stdout, /INBOX: 1 messages deleted on the destination .* --repair/);
    assert.equal((await readMailbox(l.dst, alice, 'INBOX')).length, count('INBOX') - 6);
  });

  test('(b) --repair restores what the user deleted, each message once', async () => {
    const r = l.migrate('--repair');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.result.verify?.ok, true, JSON.stringify(r.result.verify));
    assert.equal(r.result.verify?.byCause.deleted, undefined);
    assert.equal(folderOf(r, 'INBOX').copied, 6);
    assert.equal(r.result.totals.copied, 6);
    await assertSameMail(corpus, l.src, l.dst, alice);
  });

  test('(d) a folder deleted (not recreated) on the destination comes back whole, deletions in it too', async () => {
    const archive = l.dst.mailboxName('Archive');
    await l.expunge(l.dst, archive, '1:3');
    const kept = l.migrate();
    assert.equal(kept.code, 0, kept.stderr);
    assert.equal(kept.result.verify?.byCause.deleted, 3);
    // the run creates it from the plan, with a new UIDVALIDITY
    await l.dst.doveadm(['mailbox', 'delete', '-u', alice.user, archive]);

    const r = l.migrate();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.result.verify?.ok, true, JSON.stringify(r.result.verify));
    assert.equal(r.result.verify?.byCause.deleted, undefined);
    assert.equal(folderOf(r, archive).copied, count('Archive'));
    assert.equal(r.result.totals.copied, count('Archive'));
    await assertSameMail(corpus, l.src, l.dst, alice);
  });

  test('a re-run that fails leaves a migrated account migrated (the user stays on the destination)', async () => {
    const r = spawnSync(
      process.execPath,
      [
        join(ROOT, 'bin', 'run.js'),
        'migrate',
        alice.user,
        '--password-stdin',
        '--config',
        l.config,
      ],
      { input: 'not-the-password', encoding: 'utf8', timeout: 120_000 },
    );
    assert.notEqual(r.status, 0, 'a wrong password must fail the run');
    assert.equal(await l.state(), 'migrated');
  });
});

describe('migrate again after the destination lost mail: source without CONDSTORE, account not yet migrated', () => {
  const bob = { user: 'bob@example.org', password: 'bob-secret' };
  // without CONDSTORE/QRESYNC every run lists the source in full (incremental.ts)
  const l = lab(
    'repair-list',
    bob,
    {
      quirks: {
        imapCapability:
          'IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ NAMESPACE UIDPLUS MULTIAPPEND UNSELECT CHILDREN LIST-EXTENDED SPECIAL-USE',
      },
    },
    // refuses the one big message, so the first runs end failed
    { appendLimit: 512 * 1024 },
  );
  const corpus = bulkCorpus({ count: 120, avgSize: 3000, seed: 5, folders: ['INBOX', 'Work'] });
  const inSource = async (mailbox: string): Promise<number> =>
    (await readMailbox(l.src, bob, mailbox)).length;

  before(async () => {
    await l.start(corpus);
    const client = await openImap(l.src, bob);
    try {
      await client.append('INBOX', makeMessage({ subject: 'too big', size: 600_000 }), ['\\Seen']);
    } finally {
      await client.logout().catch(() => client.close());
    }
  });
  after(() => l.stop());

  test('(b) never migrated: mail expunged on the destination comes back once', async () => {
    const first = l.migrate();
    assert.equal(first.code, 1, 'the big message is refused');
    assert.equal(first.result.totals.failed, 1);
    assert.equal(await l.state(), 'failed');
    const work = l.dst.mailboxName('Work');
    await l.expunge(l.dst, work, '3:12');

    const r = l.migrate();
    assert.equal(r.code, 1, 'the big message is still refused');
    assert.equal(r.result.verify?.ok, true, JSON.stringify(r.result.verify));
    assert.equal(folderOf(r, work).copied, 10);
    assert.equal(folderOf(r, work).restored, 10);
    assert.equal(r.result.totals.copied, 10);
    assert.deepEqual(await readMailbox(l.dst, bob, work), await readMailbox(l.src, bob, work));

    // the big message goes away on the source: the account is migrated
    await l.expunge(l.src, 'INBOX', `${await inSource('INBOX')}`);
    const ok = l.migrate();
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(await l.state(), 'migrated');
    await assertSameMail(corpus, l.src, l.dst, bob);
  });

  test('(c) once migrated, deletions stay deleted, also after a re-run that was killed', async () => {
    await l.expunge(l.dst, 'INBOX', '1:3');
    const r = l.migrate();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.result.totals.copied, 0);
    assert.equal(r.result.verify?.byCause.deleted, 3);
    assert.equal((await readMailbox(l.dst, bob, 'INBOX')).length, (await inSource('INBOX')) - 3);

    // a re-run killed mid-copy leaves the account transferring: the destination is still
    // the user's mailbox, and what the user deletes there is still the user's decision
    await l.state('transferring');
    const work = l.dst.mailboxName('Work');
    await l.expunge(l.dst, work, '1:2');
    const again = l.migrate();
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.result.totals.copied, 0);
    assert.equal(again.result.verify?.byCause.deleted, 5);
    assert.equal((await readMailbox(l.dst, bob, work)).length, (await inSource(work)) - 2);
  });
});
