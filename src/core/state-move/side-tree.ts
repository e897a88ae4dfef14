/**
 * A store's side files (state/side-files.ts) as the dump carries them: every file under
 * the side folder, named relative to it. All of them, not only the UID maps the records
 * name: the POP3 UIDL map and the "handed over" marker live there too, found by account
 * and key rather than through the record.
 */
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from '../state/atomic-file.js';
import type { SideFile } from './dump-format.js';

/** Paths (with `/`) of the files under `root`, hidden ones (temp files) left out. */
export async function* sideFilePaths(root: string, prefix = ''): AsyncGenerator<string> {
  let entries;
  try {
    entries = await readdir(join(root, prefix), { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) yield* sideFilePaths(root, rel);
    else if (e.isFile()) yield rel;
  }
}

/** The file's bytes, or undefined when it does not exist. */
export async function readSideBytes(root: string, path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(join(root, ...path.split('/')));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

export async function writeSideBytes(root: string, file: SideFile): Promise<void> {
  const target = join(root, ...file.path.split('/'));
  await mkdir(dirname(target), { recursive: true, mode: 0o700 });
  await writeFileAtomic(target, file.data);
}
