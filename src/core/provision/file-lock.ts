/**
 * Advisory lock next to a shared file (`<file>.lock`, created with O_EXCL) and an
 * atomic replace (temp file + fsync + rename + directory fsync) that keeps the file's
 * mode and owner. Both together make concurrent writers (several AutoPort processes,
 * or an administrator's script using the same convention) safe and a crash mid-write
 * harmless: readers see the old or the new file, never half of one.
 */
import { constants } from 'node:fs';
import { open, readFile, rename, stat, unlink, utimes } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ProvisionError } from './hash.js';

export interface LockOptions {
  /** give up after this long (default 10 s) */
  lockTimeoutMs?: number;
  /** a lock older than this is taken over even if its owner cannot be checked (default 60 s) */
  staleMs?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// One queue per path inside this process, so parallel callers do not spin on the lock file.
const queues = new Map<string, Promise<unknown>>();

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function lockIsStale(lockPath: string, staleMs: number): Promise<boolean> {
  try {
    const [text, st] = await Promise.all([readFile(lockPath, 'utf8'), stat(lockPath)]);
    const [pidText, host] = text.split(' ');
    const pid = Number(pidText);
    if (host === hostname() && Number.isInteger(pid) && pid > 0 && !isAlive(pid)) return true;
    return Date.now() - st.mtimeMs > staleMs;
  } catch (err) {
    // Vanished between our open and read: not stale, just retry.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

async function acquire(lockPath: string, opts: LockOptions): Promise<void> {
  const deadline = Date.now() + (opts.lockTimeoutMs ?? 10_000);
  let wait = 5;
  for (;;) {
    try {
      const fh = await open(
        lockPath,
        constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY,
        0o600,
      );
      await fh.writeFile(`${process.pid} ${hostname()} ${new Date().toISOString()}\n`);
      await fh.close();
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    if (await lockIsStale(lockPath, opts.staleMs ?? 60_000)) {
      await unlink(lockPath).catch(() => undefined);
      continue;
    }
    if (Date.now() > deadline) {
      throw new ProvisionError(
        `${lockPath} is held by another writer; if no AutoPort or admin script is running, remove the lock file`,
      );
    }
    await sleep(wait + Math.floor(Math.random() * wait));
    wait = Math.min(wait * 2, 50);
  }
}

/** Run `fn` holding `<file>.lock` (and this process's queue for the file). */
export function withFileLock<T>(
  file: string,
  fn: () => Promise<T>,
  opts: LockOptions = {},
): Promise<T> {
  const lockPath = `${file}.lock`;
  const prev = queues.get(file) ?? Promise.resolve();
  const run = prev
    .catch(() => undefined)
    .then(async () => {
      await acquire(lockPath, opts);
      try {
        return await fn();
      } finally {
        await unlink(lockPath).catch(() => undefined);
      }
    });
  const tail = run.catch(() => undefined);
  queues.set(file, tail);
  void tail.then(() => {
    if (queues.get(file) === tail) queues.delete(file);
  });
  return run;
}

export interface ReplaceOptions {
  /** mode for a file that does not exist yet (default 0o640) */
  mode?: number;
}

/**
 * Replace `file` with `content` atomically. An existing file's mode and owner are
 * kept. When the new file has the old size and its mtime falls in the same second,
 * the mtime is moved one second on: Dovecot notices a changed passwd-file by its
 * mtime (whole seconds) and size, and would otherwise keep the old password.
 */
export async function replaceFile(
  file: string,
  content: string,
  opts: ReplaceOptions = {},
): Promise<void> {
  const old = await stat(file).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  const mode = old ? old.mode & 0o7777 : (opts.mode ?? 0o640);
  const tmp = join(
    dirname(file),
    `.${basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`,
  );
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(content, 'utf8');
    await fh.chmod(mode);
    if (old && (old.uid !== process.getuid?.() || old.gid !== process.getgid?.())) {
      try {
        await fh.chown(old.uid, old.gid);
      } catch (err) {
        throw new ProvisionError(
          `cannot keep the owner ${old.uid}:${old.gid} of ${file} (${(err as Error).message}); run AutoPort as that user or as root`,
          true,
        );
      }
    }
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  const dir = await open(dirname(file), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
  if (old) {
    const now = await stat(file);
    const oldSec = Math.floor(old.mtimeMs / 1000);
    if (now.size === old.size && Math.floor(now.mtimeMs / 1000) <= oldSec) {
      await utimes(file, now.atime, new Date((oldSec + 1) * 1000));
    }
  }
}
