/**
 * Side files: per-account data too large for the main document (the copy engine's UID
 * maps). They live in `<state dir>/<state name>-data/<account>/<key>.json`; the record
 * keeps only the relative path (FolderProgress.uidMap), so moving the state directory
 * moves everything. Written with the same temp + fsync + rename recipe as the store.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { basename, dirname, extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { writeFileAtomic } from './atomic-file.js';
import { StateError } from './errors.js';
import { normalizeAddress } from './records.js';

export interface SidePath {
  /** relative to the data folder's parent (the state folder): what goes into FolderProgress.uidMap */
  relative: string;
  /** for writeSideFile / readSideFile */
  absolute: string;
}

type HasLocation = { readonly location: string; readonly sideDir?: string | undefined };

/** The data folder (absolute): the store's sideDir, or `<state name>-data` beside the file. */
export function sideDataDir(store: HasLocation): string {
  if (store.sideDir !== undefined) return store.sideDir;
  const name = basename(store.location);
  return join(
    dirname(store.location),
    `${name.slice(0, name.length - extname(name).length) || name}-data`,
  );
}

/**
 * A file-system-safe name that stays readable: unsafe characters are %-escaped, and a short
 * hash of the exact input keeps names unique on case-insensitive file systems and when
 * long names are cut.
 */
function safeName(s: string): string {
  const readable = s
    .replace(/[^A-Za-z0-9@._+=-]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
    .replace(/^\./, '%2e')
    .slice(0, 80);
  const hash = createHash('sha256').update(s).digest('hex').slice(0, 8);
  return `${readable}-${hash}`;
}

export function sideFilePath(store: HasLocation, address: string, key: string): SidePath {
  const data = sideDataDir(store);
  const rel = join(basename(data), safeName(normalizeAddress(address)), `${safeName(key)}.json`);
  return { relative: rel, absolute: join(dirname(data), rel) };
}

/** Absolute path of a relative side-file path taken from a record; refuses to leave the data dir. */
export function resolveSideFile(store: HasLocation, rel: string): string {
  const data = sideDataDir(store);
  const base = dirname(data);
  const abs = resolve(base, rel);
  const inside = relative(data, abs);
  if (isAbsolute(rel) || inside.startsWith('..') || inside === '' || isAbsolute(inside)) {
    throw new StateError(
      'EBADSIDEPATH',
      `side file path ${JSON.stringify(rel)} leaves ${base}${sep}`,
    );
  }
  return abs;
}

export async function writeSideFile(path: string, data: unknown): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writeFileAtomic(path, JSON.stringify(data));
}

/** undefined when the file does not exist (nothing checkpointed yet). */
export async function readSideFile<T = unknown>(path: string): Promise<T | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new StateError(
      'ESIDECORRUPT',
      `side file ${path} is unreadable (${(err as Error).message}); ` +
        `move it away to drop this checkpoint`,
      { cause: err },
    );
  }
}

/** Remove all side files of an account (e.g. when it is removed or its transfer is reset). */
export async function removeSideFiles(store: HasLocation, address: string): Promise<void> {
  const dir = dirname(sideFilePath(store, address, 'x').absolute);
  await rm(dir, { recursive: true, force: true });
}
