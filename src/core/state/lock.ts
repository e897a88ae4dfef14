/**
 * Single-writer lock of a state store: one process owns `<state>.lock` at a time.
 *
 * The lock file is written in full to a private temp file and then hard-linked to its
 * name. link(2) fails with EEXIST exactly like open(O_CREAT|O_EXCL), but the lock can
 * never be seen empty (an O_EXCL create followed by a write leaves an empty file if the
 * process dies in between, and an empty lock cannot name its owner).
 *
 * A lock whose owner is gone is stale and taken over with a warning, so a kill -9 never
 * needs a human. "Gone" is only decidable on the same host: the pid is not alive, or the
 * pid is alive but belongs to a process started later (pid reuse, typical in containers
 * where autoport is pid 1 again after a restart; Linux only, via /proc/<pid>/stat).
 */
import { randomBytes } from 'node:crypto';
import {
  linkSync,
  readdirSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { hostname as osHostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { StoreLockedError } from './errors.js';

export interface LockInfo {
  pid: number;
  hostname: string;
  /** ISO time the lock was taken */
  startedAt: string;
  /** Linux: the owner's start time in clock ticks since boot, to detect pid reuse */
  procStart?: string;
  /** random, so release never removes a lock that another process took over */
  nonce: string;
}

export interface StoreLock {
  readonly path: string;
  readonly info: LockInfo;
  /** idempotent; also runs on process exit */
  release(): void;
}

export interface LockOptions {
  /** what the lock protects, for messages (default: the lock path without `.lock`) */
  storePath?: string;
  onWarning?: (message: string) => void;
}

export function lockPathFor(storePath: string): string {
  return `${storePath}.lock`;
}

function procStartTime(pid: number): string | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm (field 2) may contain spaces and parentheses; fields after the last ')' are fixed.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[19]; // field 22, starttime
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readLock(path: string): { raw: string; info?: LockInfo } | undefined {
  let raw: string;
  try {
    raw = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const info = JSON.parse(raw) as LockInfo;
    if (typeof info.pid === 'number' && typeof info.hostname === 'string') return { raw, info };
  } catch {
    /* fall through: unreadable lock */
  }
  return { raw };
}

/** Why a lock is stale, or undefined while its owner may still be running. */
function staleReason(info: LockInfo | undefined): string | undefined {
  if (!info) return 'unreadable lock file';
  if (info.hostname !== osHostname()) return undefined;
  if (!isAlive(info.pid)) return `pid ${info.pid} is not running`;
  const now = procStartTime(info.pid);
  if (info.procStart && now && now !== info.procStart) {
    return `pid ${info.pid} now belongs to another process`;
  }
  return undefined;
}

function tryLink(content: string, lockPath: string): boolean {
  const tmp = `${lockPath}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(tmp, content, { mode: 0o644, flag: 'wx' });
  try {
    linkSync(tmp, lockPath);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    unlinkSync(tmp);
  }
}

/**
 * Move a stale lock out of the way. Renaming (not unlinking) and re-checking the content
 * guards against two processes taking over the same stale lock at once: the loser finds a
 * fresh lock in its hands and puts it back.
 */
function removeStale(lockPath: string, seen: string): void {
  const aside = `${lockPath}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    renameSync(lockPath, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (readFileSync(aside, 'utf8') !== seen) {
    try {
      linkSync(aside, lockPath);
    } catch {
      /* a third process locked meanwhile; its lock stands */
    }
  }
  unlinkSync(aside);
}

/** Temp and set-aside files of lockers that were killed mid-way (named with their pid). */
function removeLeftovers(lockPath: string): void {
  const base = `${basename(lockPath)}.`;
  let names: string[];
  try {
    names = readdirSync(dirname(lockPath));
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^(?:stale-)?(\d+)-[0-9a-f]{8}(?:\.tmp)?$/.exec(name.slice(base.length));
    if (!name.startsWith(base) || !m || isAlive(Number(m[1]))) continue;
    try {
      unlinkSync(join(dirname(lockPath), name));
    } catch {
      /* gone already */
    }
  }
}

export function acquireLock(lockPath: string, options: LockOptions = {}): StoreLock {
  const storePath = options.storePath ?? lockPath.replace(/\.lock$/, '');
  const warn =
    options.onWarning ?? ((m: string) => process.emitWarning(m, { code: 'AUTOPORT_STALE_LOCK' }));
  const info: LockInfo = {
    pid: process.pid,
    hostname: osHostname(),
    startedAt: new Date().toISOString(),
    procStart: procStartTime(process.pid),
    nonce: randomBytes(8).toString('hex'),
  };
  const content = `${JSON.stringify(info)}\n`;

  for (let attempt = 0; ; attempt++) {
    if (tryLink(content, lockPath)) break;
    const current = readLock(lockPath);
    if (!current && attempt < 5) continue; // released between our link and our read
    const reason = current && staleReason(current.info);
    if (reason === undefined || attempt >= 5) {
      const owner = current?.info ?? { pid: 0, hostname: '?' };
      throw new StoreLockedError(
        storePath,
        lockPath,
        owner.pid,
        owner.hostname,
        owner.hostname !== info.hostname,
      );
    }
    warn(
      `taking over stale lock ${lockPath} (${reason}); the previous owner did not shut down cleanly`,
    );
    if (current) removeStale(lockPath, current.raw);
  }

  removeLeftovers(lockPath);
  let held = true;
  const release = (): void => {
    if (!held) return;
    held = false;
    process.removeListener('exit', release);
    // Remove only our own lock: after a takeover the file belongs to someone else.
    if (readLock(lockPath)?.raw === content) {
      try {
        unlinkSync(lockPath);
      } catch {
        /* already gone */
      }
    }
  };
  process.on('exit', release);
  return { path: lockPath, info, release };
}
