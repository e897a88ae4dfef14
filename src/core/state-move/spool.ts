/**
 * A dump read from standard input is kept in a private temporary file first: an import
 * reads its dump three times (check, write, verify), and a pipe only once.
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';

export interface Spooled {
  path: string;
  remove(): Promise<void>;
}

export async function spoolToFile(input: NodeJS.ReadableStream): Promise<Spooled> {
  const dir = await mkdtemp(join(tmpdir(), 'autoport-dump-'));
  const path = join(dir, 'dump.jsonl');
  const remove = () => rm(dir, { recursive: true, force: true });
  try {
    await pipeline(input, createWriteStream(path, { mode: 0o600 }));
  } catch (err) {
    await remove();
    throw err;
  }
  return { path, remove };
}
