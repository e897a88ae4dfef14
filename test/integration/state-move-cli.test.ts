/**
 * `autoport state export` and `autoport state import` through the built CLI: a JSON state
 * moved to a real PostgreSQL (test/support/postgres.ts) with the config's `state:` changed,
 * and back through a pipe (--file -); the messages of a dump cut short, of a target that
 * holds accounts, and of a state a gateway owns.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openJsonStore } from '../../src/core/state/json-store.js';
import { sideFilePath, writeSideFile } from '../../src/core/state/side-files.js';
import type { StateStore } from '../../src/core/state/types.js';
import { startPostgres, type PostgresInstance } from '../support/postgres.js';
import { ensureBuilt, ROOT, runCli, writeOfflineConfig } from '../support/cli.js';

const cli = (args: string[], input?: string) =>
  runCli(args, { env: { AUTOPORT_CONFIG: '' }, ...(input === undefined ? {} : { input }) });

const SEALED = { kid: 'k1', iv: 'aXY=', tag: 'dGFn', data: 'c2VjcmV0' };

/** A config like `base` with another `state:` (and stateDir) line. */
function withState(base: string, file: string, state: string, stateDir?: string): string {
  const text = readFileSync(base, 'utf8').replace(/^state: .*$/m, `state: ${state}`);
  writeFileSync(file, stateDir ? `${text}stateDir: ${stateDir}\n` : text);
  return file;
}

async function records(store: StateStore): Promise<string> {
  return JSON.stringify((await store.list()).sort((a, b) => (a.address < b.address ? -1 : 1)));
}

describe('autoport state export / import (built CLI)', () => {
  let dir: string;
  let db: PostgresInstance;
  let jsonConfig: string;
  let pgConfig: string;
  let original: string;
  let holder: ChildProcess | undefined;

  before(async () => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'ap-state-cli-'));
    db = await startPostgres();
    jsonConfig = writeOfflineConfig(dir);
    mkdirSync(join(dir, 'pg'));
    pgConfig = withState(jsonConfig, join(dir, 'pg.yaml'), db.url, join(dir, 'pg'));
    const store = await openJsonStore(join(dir, 'state.json'), { saveDelayMs: 1 });
    const map = sideFilePath(store, 'alice@example.org', 'uidmap INBOX');
    await writeSideFile(map.absolute, [[1, 11]]);
    await store.upsert('alice@example.org', {
      state: 'migrated',
      credentials: SEALED,
      updatedAt: '2026-01-01T00:00:00.000Z',
      folders: {
        INBOX: {
          source: 'INBOX',
          destination: 'INBOX',
          messages: 1,
          bytes: 10,
          copied: 1,
          skipped: 0,
          failed: 0,
          uidMap: map.relative,
          updatedAt: '2026-01-01T00:00:00.000Z',
        },
      },
    });
    await store.upsert('bob@example.org', { state: 'captured', credentials: SEALED });
    await store.upsert('carol@example.org', { state: 'failed', reason: 'quota', attempts: 2 });
    original = await records(store);
    await store.close();
  });

  after(async () => {
    if (holder?.pid && holder.exitCode === null && holder.signalCode === null)
      process.kill(holder.pid, 'SIGKILL');
    await db?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('moves a JSON state to PostgreSQL: export, change state:, import', async () => {
    const dump = join(dir, 'state.jsonl');
    const ex = await cli(['state', 'export', '-c', jsonConfig, '--file', dump, '--json']);
    assert.equal(ex.code, 0, ex.stderr);
    assert.equal(JSON.parse(ex.stdout).records, 3);
    assert.equal(JSON.parse(ex.stdout).sideFiles, 1);
    const again = await cli(['state', 'export', '-c', jsonConfig, '--file', dump]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already exists\n {2}try: name a new file/);

    const im = await cli(['state', 'import', '-c', pgConfig, '--file', dump]);
    assert.equal(im.code, 0, im.stderr);
    assert.match(im.stdout, /^imported 3 account\(s\) into postgresql:\/\/.*: 3 written/);
    assert.match(im.stdout, /verified: every record and side file reads back/);
    const map = sideFilePath(
      { location: 'postgresql://x', sideDir: join(dir, 'pg', 'state-data') },
      'alice@example.org',
      'uidmap INBOX',
    );
    assert.deepEqual(JSON.parse(readFileSync(map.absolute, 'utf8')), [[1, 11]]);
    const list = await cli(['accounts', 'list', '-c', pgConfig, '--json']);
    assert.equal(list.code, 0, list.stderr);
    assert.equal((JSON.parse(list.stdout) as unknown[]).length, 3);

    const twice = await cli(['state', 'import', '-c', pgConfig, '--file', dump, '--json']);
    assert.equal(twice.code, 1);
    const err = JSON.parse(twice.stdout).error;
    assert.equal(err.code, 'EIMPORTNOTEMPTY');
    assert.match(err.hint, /--merge/);
    const merged = await cli([
      'state',
      'import',
      '-c',
      pgConfig,
      '--file',
      dump,
      '--merge',
      '--json',
    ]);
    assert.equal(merged.code, 0, merged.stderr);
    assert.equal(JSON.parse(merged.stdout).unchanged, 3);
  });

  it('and back through a pipe: export --file - | import --file -', async () => {
    const ex = await cli(['state', 'export', '-c', pgConfig, '--file', '-']);
    assert.equal(ex.code, 0, ex.stderr);
    assert.match(ex.stderr, /^exported 3 account\(s\), 0 side data entries and 1 side file\(s\)/);
    mkdirSync(join(dir, 'back'));
    const back = withState(jsonConfig, join(dir, 'back.yaml'), join(dir, 'back', 'state.json'));
    const im = await cli(['state', 'import', '-c', back, '--file', '-'], ex.stdout);
    assert.equal(im.code, 0, im.stderr);
    const store = await openJsonStore(join(dir, 'back', 'state.json'), { readOnly: true });
    assert.equal(await records(store), original, 'every record, byte for byte');
    await store.close();
    const map = sideFilePath(
      { location: join(dir, 'back', 'state.json') },
      'alice@example.org',
      'uidmap INBOX',
    );
    assert.deepEqual(JSON.parse(readFileSync(map.absolute, 'utf8')), [[1, 11]]);
  });

  it('a dump cut short is refused with what to do, and nothing imported', async () => {
    const whole = readFileSync(join(dir, 'state.jsonl'));
    writeFileSync(join(dir, 'cut.jsonl'), whole.subarray(0, Math.floor(whole.length * 0.6)));
    mkdirSync(join(dir, 'cut'));
    const target = withState(jsonConfig, join(dir, 'cut.yaml'), join(dir, 'cut', 'state.json'));
    const im = await cli(['state', 'import', '-c', target, '--file', join(dir, 'cut.jsonl')]);
    assert.equal(im.code, 1);
    assert.match(im.stderr, /^error: .*cut\.jsonl line \d+: .*; nothing was imported\n/);
    assert.match(
      im.stderr,
      /try: the dump is damaged or was cut short .* run `autoport state export` again/,
    );
    const store = await openJsonStore(join(dir, 'cut', 'state.json'), { readOnly: true });
    assert.equal(await store.count(), 0);
    await store.close();
  });

  it('refuses to export a state a running gateway owns', async () => {
    holder = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(ROOT, 'test/support/state-writer.ts'),
        'hold',
        join(dir, 'state.json'),
      ],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((ready, fail) => {
      holder!.stdout!.on('data', (b: Buffer) => b.toString().includes('ready') && ready());
      holder!.once('exit', (code) => fail(new Error(`state-writer exited ${code}`)));
    });
    const ex = await cli(['state', 'export', '-c', jsonConfig, '--file', join(dir, 'x.jsonl')]);
    assert.equal(ex.code, 1);
    assert.match(ex.stderr, /^error: another autoport process \(pid \d+\) owns /);
    assert.match(ex.stderr, /try: stop `autoport proxy`/);
    process.kill(holder.pid!, 'SIGKILL');
    await new Promise((r) => holder!.once('exit', r));
  });
});
