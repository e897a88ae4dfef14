/**
 * `autoport migrate` as the operator runs it (bin/run.js on the built dist/, as `npm test`
 * builds it first): --dry-run changes nothing, a real run exits 0 with a --json result, a
 * wrong password exits 1 with a hint.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { stringify } from 'yaml';
import {
  loadCorpus,
  makeTempDir,
  removeDir,
  standardCorpus,
  startDovecot,
  type DovecotInstance,
} from '../support/index.js';
import { assertSameMail } from './migrate-support.js';

const ROOT = join(import.meta.dirname, '..', '..');
const alice = { user: 'alice@example.org', password: 'alice-secret' };
const master = { user: 'admin', password: 'master-secret' };

function cli(
  args: string[],
  input: string,
): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'run.js'), 'migrate', ...args], {
    input,
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('autoport migrate (CLI)', () => {
  let src: DovecotInstance;
  let dst: DovecotInstance;
  let dir: string;
  let config: string;
  const corpus = standardCorpus();

  before(async () => {
    assert.ok(
      existsSync(join(ROOT, 'dist', 'commands', 'migrate.js')),
      'dist/ is missing: run `npm run build` (npm test does)',
    );
    [src, dst] = await Promise.all([
      startDovecot({ name: 'cli-src', users: [alice] }),
      startDovecot({ name: 'cli-dst', users: [], master, scheme: 'SHA512-CRYPT' }),
    ]);
    dir = makeTempDir('migrate-cli');
    await loadCorpus(src, alice.user, alice.password, corpus);
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
  });
  after(async () => {
    await Promise.all([src?.stop(), dst?.stop()]);
    if (dir) removeDir(dir);
  });

  test('--dry-run shows the plan and writes nothing', () => {
    const r = cli(
      [alice.user, '--password-stdin', '--dry-run', '--json', '--config', config],
      alice.password,
    );
    assert.equal(r.code, 0, r.stderr);
    const plan = JSON.parse(r.stdout) as {
      totals: { messages: number };
      folders: { source: string }[];
    };
    assert.equal(
      plan.totals.messages,
      corpus.folders.reduce((n, f) => n + f.messages.length, 0),
    );
    assert.ok(plan.folders.some((f) => f.source === '日本語'));
    assert.equal(existsSync(join(dir, 'state.json')), false, 'a dry run must not create the state');
    assert.equal(existsSync(join(dir, 'ledger.jsonl')), false);
  });

  test('a wrong password exits 1 and says what to try', () => {
    const r = cli([alice.user, '--password-stdin', '--config', config], 'wrong');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /try: /);
    // checked at the source first: a wrong password is never provisioned on the destination
    assert.doesNotMatch(readFileSync(dst.passwdFile, 'utf8'), /alice@/);
  });

  test('a real run exits 0 with a --json result; the servers agree', async () => {
    const r = cli(
      [alice.user, '--password-stdin', '--json', '--config', config],
      `${alice.password}\n`,
    );
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout) as { ok: boolean; totals: { copied: number } };
    assert.equal(result.ok, true);
    await assertSameMail(corpus, src, dst, alice);
  });
});
