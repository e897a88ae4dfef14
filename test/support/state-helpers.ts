/** Small helpers shared by the state tests: temp dirs, child processes, account records. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { AccountRecord, AccountState } from '../../src/core/state/types.js';

const cleanups = new WeakMap<TestContext, (() => unknown)[]>();

/**
 * Run `fn` when the test ends, last registered first (node:test runs `after` hooks in
 * registration order, which would remove a temp dir before the store in it is closed).
 */
export function defer(t: TestContext, fn: () => unknown): void {
  let list = cleanups.get(t);
  if (!list) {
    const fns: (() => unknown)[] = [];
    cleanups.set(t, fns);
    list = fns;
    t.after(async () => {
      for (const f of fns.reverse()) await f();
    });
  }
  list.push(fn);
}

export function tempDir(t: TestContext, prefix = 'autoport-state-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  defer(t, () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const WRITER = join(import.meta.dirname, 'state-writer.ts');

export interface Writer {
  child: ChildProcess;
  stderr: () => string;
  /** resolves with the "ready" line, rejects if the child exits first */
  ready: Promise<string>;
  exited: Promise<number | null>;
}

export function spawnWriter(mode: 'hold' | 'exit' | 'loop', statePath: string): Writer {
  const child = spawn(process.execPath, ['--import', 'tsx', WRITER, mode, statePath], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  const ready = new Promise<string>((res, rej) => {
    let out = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const line = out.split('\n').find((l) => l.startsWith('ready'));
      if (line !== undefined) res(line);
    });
    void exited.then((code) =>
      rej(new Error(`state-writer exited (${code}) before ready: ${err}`)),
    );
  });
  ready.catch(() => undefined); // callers that kill early never await it
  return { child, stderr: () => err, ready, exited };
}

/** SIGKILL a child we started and wait until it is reaped. */
export async function killWriter(w: Writer): Promise<void> {
  if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
  await w.exited;
}

/** An account record as the store holds it, for report and view tests. */
export function accountRecord(
  address: string,
  state: AccountState,
  extra: Partial<AccountRecord> = {},
): AccountRecord {
  return {
    address,
    state,
    updatedAt: '2026-11-01T00:00:00.000Z',
    errors: [],
    folders: {},
    ...extra,
  };
}
