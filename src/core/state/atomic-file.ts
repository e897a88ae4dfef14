/**
 * Crash-safe file replacement: after a kill -9 or a power cut at any moment the target is
 * either the old complete file or the new complete file, never a mix or a truncation.
 *
 * Recipe: write a temp file in the same directory (rename is only atomic within one file
 * system), fsync it (otherwise the rename can reach the disk before the data and leave an
 * empty file after a power cut, the classic ext4 "zero-length file" failure), rename over
 * the target, then fsync the directory so the rename itself is durable.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import { copyFile, link, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export type AtomicData = string | Uint8Array | Iterable<string | Uint8Array>;

export interface AtomicWriteOptions {
  /** file mode of the new file (default 0o600: state files hold sealed credentials) */
  mode?: number;
  /**
   * Keep the replaced version at this path. Done with a hard link, so it costs no copy and
   * the target never goes missing; file systems without hard links fall back to a copy.
   */
  backupPath?: string;
  /** fail with EEXIST instead of replacing an existing target (link(2) instead of rename(2)) */
  exclusive?: boolean;
  /**
   * fdatasync the temp file after every this many bytes. Bounds the dirty data a large file
   * leaves for the kernel to write at once: on ext4 an fsync of any other file (the
   * store's journal) waits for that data too.
   */
  syncEveryBytes?: number;
  /** awaited before each chunk: lets more urgent writes (the journal's) go first */
  pace?: () => Promise<unknown>;
  /** runs once the temp file is complete and fsynced, before it replaces the target (tests crash here) */
  beforeRename?: () => void | Promise<void>;
}

const TMP_MARK = '.tmp-';

/** Temp files of `target` start with this; used to clean up after a crash. */
export function tempPrefix(target: string): string {
  return `.${basename(target)}${TMP_MARK}`;
}

export async function writeFileAtomic(
  target: string,
  data: AtomicData,
  options: AtomicWriteOptions = {},
): Promise<{ bytes: number }> {
  const dir = dirname(target);
  const tmp = join(dir, `${tempPrefix(target)}${process.pid}-${randomBytes(4).toString('hex')}`);
  const fh = await open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, options.mode ?? 0o600);
  let bytes = 0;
  try {
    try {
      const chunks = typeof data === 'string' || data instanceof Uint8Array ? [data] : data;
      let unsynced = 0;
      // Each await lets the event loop run, so a large document does not stall sessions.
      for (const chunk of chunks) {
        if (options.pace) await options.pace();
        const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
        let off = 0;
        while (off < buf.length) {
          const { bytesWritten } = await fh.write(buf, off, buf.length - off);
          off += bytesWritten;
        }
        bytes += buf.length;
        unsynced += buf.length;
        if (options.syncEveryBytes !== undefined && unsynced >= options.syncEveryBytes) {
          await fh.datasync();
          unsynced = 0;
        }
      }
      await fh.sync();
    } finally {
      await fh.close();
    }
    await options.beforeRename?.();
    if (options.exclusive) {
      await link(tmp, target);
      await unlink(tmp);
    } else {
      if (options.backupPath) await keepBackup(target, options.backupPath);
      await rename(tmp, target);
    }
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await syncDir(dir);
  return { bytes };
}

/** Replace `backup` with the current `target` without ever leaving `target` absent. */
async function keepBackup(target: string, backup: string): Promise<void> {
  const tmp = `${backup}${TMP_MARK}${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await link(target, tmp);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return; // first save: nothing to keep yet
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EXDEV' && code !== 'EMLINK') throw err;
    await copyFile(target, tmp);
  }
  await rename(tmp, backup);
}

export async function syncDir(dir: string): Promise<void> {
  let fh;
  try {
    fh = await open(dir, fsc.O_RDONLY);
  } catch {
    return; // platforms that cannot open a directory (Windows) cannot fsync one either
  }
  try {
    await fh.sync();
  } catch (err) {
    // Some file systems refuse fsync on a directory; the data itself is already synced.
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'EISDIR' && code !== 'EPERM') throw err;
  } finally {
    await fh.close();
  }
}

/**
 * Remove temp files a killed writer left next to `target`. Only call while holding the
 * store lock: a live writer's temp file looks the same.
 */
export async function removeStaleTemps(target: string): Promise<number> {
  const dir = dirname(target);
  const prefixes = [tempPrefix(target), `${basename(target)}.bak${TMP_MARK}`];
  let removed = 0;
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 0;
  }
  for (const name of names) {
    if (!prefixes.some((p) => name.startsWith(p))) continue;
    const p = join(dir, name);
    if (!(await stat(p).catch(() => undefined))?.isFile()) continue;
    await unlink(p).catch(() => undefined);
    removed++;
  }
  return removed;
}
