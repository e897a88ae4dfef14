/**
 * Temp dirs for test servers, and the last-chance cleanup that runs when the process ends
 * (normal exit, an uncaught error, or SIGINT/SIGTERM/SIGHUP) so a crashed test run does not
 * leave daemons or files behind.
 *
 * Set AUTOPORT_KEEP_TMP=1 to keep the dirs (logs, configs, Maildirs) for a post-mortem.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function keepTemp(): boolean {
  const v = process.env.AUTOPORT_KEEP_TMP;
  return v !== undefined && v !== '' && v !== '0';
}

/**
 * A fresh dir under os.tmpdir(). Mode 0755 because daemons that drop privileges (Dovecot's
 * auth and mail processes, Postfix's daemons) must traverse it to reach their files.
 * Kept short: Dovecot puts UNIX sockets under it and sun_path holds only 107 bytes.
 */
export function makeTempDir(prefix: string): string {
  const safe = prefix.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 24);
  const dir = mkdtempSync(join(tmpdir(), `ap-${safe}-`));
  chmodSync(dir, 0o755);
  return dir;
}

export function removeDir(dir: string): void {
  if (keepTemp()) return;
  rmSync(dir, { recursive: true, force: true });
}

type Cleanup = () => void;
const cleanups = new Set<Cleanup>();
let installed = false;

function runCleanups(): void {
  for (const fn of [...cleanups].reverse()) {
    cleanups.delete(fn);
    try {
      fn();
    } catch {
      /* best effort: the process is ending */
    }
  }
}

function onSignal(signal: NodeJS.Signals): void {
  runCleanups();
  // Behave as if we had not been here: if nobody else handles the signal, die of it.
  process.removeListener(signal, onSignal);
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

/**
 * Register a synchronous cleanup for process end; returns a function that unregisters it
 * (call it once the resource was released the normal way). Cleanups run newest first.
 */
export function onProcessExit(fn: Cleanup): () => void {
  if (!installed) {
    installed = true;
    process.on('exit', runCleanups);
    for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, onSignal);
  }
  cleanups.add(fn);
  return () => {
    cleanups.delete(fn);
  };
}
