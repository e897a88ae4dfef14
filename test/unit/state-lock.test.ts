import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  StoreLockedError,
  StoreReadOnlyError,
  openJsonStore,
  type LockInfo,
} from '../../src/core/state/index.js';
import { defer, killWriter, spawnWriter, tempDir } from '../support/state-helpers.js';

function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '']);
  assert.ok(r.pid);
  return r.pid;
}

function writeLock(file: string, info: Partial<LockInfo>): void {
  writeFileSync(
    `${file}.lock`,
    JSON.stringify({ hostname: hostname(), startedAt: 'x', nonce: 'n', ...info }),
  );
}

function lockOwner(file: string): LockInfo {
  return JSON.parse(readFileSync(`${file}.lock`, 'utf8')) as LockInfo;
}

test('a second open in the same process is refused until the first closes', async (t) => {
  const file = join(tempDir(t), 'state.json');
  const first = await openJsonStore(file);
  await assert.rejects(openJsonStore(file), (err: unknown) => {
    assert.ok(err instanceof StoreLockedError);
    assert.equal(err.pid, process.pid);
    assert.equal(err.code, 'ESTORELOCKED');
    assert.equal(
      err.message,
      `another autoport process (pid ${process.pid}) owns ${file}; stop it, or use its control socket`,
    );
    return true;
  });
  await first.close();
  const second = await openJsonStore(file);
  await second.close();
});

test('a store held by a child process is refused; after kill -9 it is taken over', async (t) => {
  const file = join(tempDir(t), 'state.json');
  const w = spawnWriter('hold', file);
  defer(t, () => killWriter(w));
  await w.ready;
  await assert.rejects(openJsonStore(file), (err: unknown) => {
    assert.ok(err instanceof StoreLockedError);
    assert.equal(err.pid, w.child.pid);
    assert.match(err.message, new RegExp(`pid ${w.child.pid}\\) owns ${file}`));
    return true;
  });
  const reader = await openJsonStore(file, { readOnly: true });
  assert.equal(await reader.count(), 0);
  await assert.rejects(async () => reader.upsert('a@x', {}), StoreReadOnlyError);
  await reader.close();
  assert.equal(lockOwner(file).pid, w.child.pid, 'a reader neither takes nor removes the lock');
  await killWriter(w);
  const warnings: string[] = [];
  const store = await openJsonStore(file, { onWarning: (m) => warnings.push(m) });
  defer(t, () => store.close());
  assert.equal(warnings.length, 1);
  assert.match(warnings[0] ?? '', new RegExp(`stale lock .*pid ${w.child.pid} is not running`));
  assert.equal(lockOwner(file).pid, process.pid);
});

test('a process that exits without close() releases its lock', async (t) => {
  const file = join(tempDir(t), 'state.json');
  const w = spawnWriter('exit', file);
  await w.ready;
  assert.equal(await w.exited, 0);
  assert.equal(existsSync(`${file}.lock`), false);
});

test('stale locks are taken over: dead pid, reused pid, unreadable file', async (t) => {
  const dir = tempDir(t);
  const cases: [string, () => void, RegExp][] = [
    ['dead', () => writeLock(join(dir, 'dead.json'), { pid: deadPid() }), /is not running/],
    ['garbage', () => writeFileSync(join(dir, 'garbage.json.lock'), 'xx'), /unreadable lock file/],
  ];
  if (process.platform === 'linux') {
    // Our own pid, but recorded with another start time: a previous process that had it.
    cases.push([
      'reused',
      () => writeLock(join(dir, 'reused.json'), { pid: process.pid, procStart: '1' }),
      /now belongs to another process/,
    ]);
  }
  for (const [name, make, why] of cases) {
    make();
    const warnings: string[] = [];
    const store = await openJsonStore(join(dir, `${name}.json`), {
      onWarning: (m) => warnings.push(m),
    });
    assert.equal(warnings.length, 1, name);
    assert.match(warnings[0] ?? '', why);
    assert.equal(lockOwner(join(dir, `${name}.json`)).pid, process.pid);
    await store.close();
  }
});

test('a lock from another host is never taken over', async (t) => {
  const file = join(tempDir(t), 'state.json');
  writeLock(file, { pid: deadPid(), hostname: 'other-node.example' });
  await assert.rejects(openJsonStore(file), (err: unknown) => {
    assert.ok(err instanceof StoreLockedError);
    assert.match(err.message, /on host other-node\.example/);
    assert.match(err.message, new RegExp(`delete ${file}\\.lock`));
    return true;
  });
  assert.equal(lockOwner(file).hostname, 'other-node.example');
});

test('leftover files of killed lockers are removed; live ones are kept', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'state.json');
  const dead = deadPid();
  writeFileSync(`${file}.lock.${dead}-0123abcd.tmp`, '{}');
  writeFileSync(`${file}.lock.stale-${dead}-0123abcd`, '{}');
  writeFileSync(`${file}.lock.${process.pid}-0123abcd.tmp`, '{}');
  const store = await openJsonStore(file);
  defer(t, () => store.close());
  assert.deepEqual(
    readdirSync(dir).filter((n) => n.includes('.lock.')),
    [`state.json.lock.${process.pid}-0123abcd.tmp`],
  );
});

test('processes racing for a stale lock: exactly one wins', async (t) => {
  const file = join(tempDir(t), 'state.json');
  writeLock(file, { pid: deadPid() });
  const writers = Array.from({ length: 4 }, () => spawnWriter('hold', file));
  for (const w of writers) defer(t, () => killWriter(w));
  const outcomes = await Promise.all(
    writers.map((w) =>
      w.ready.then(
        () => 'ready',
        () => w.stderr(),
      ),
    ),
  );
  assert.equal(outcomes.filter((o) => o === 'ready').length, 1, outcomes.join('\n'));
  for (const o of outcomes.filter((x) => x !== 'ready'))
    assert.match(o, /StoreLockedError: another autoport process/);
  const winner = writers[outcomes.indexOf('ready')];
  assert.equal(lockOwner(file).pid, winner?.child.pid);
});
