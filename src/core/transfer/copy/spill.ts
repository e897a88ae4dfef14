/**
 * Large messages go to a temporary file instead of memory. A literal over the threshold is
 * written to disk as it arrives (and hashed on the way), then sent to the destination from
 * the file, so a 50 MB message costs a few socket buffers of memory, not 50 MB (or 100 MB
 * while the garbage collector catches up). Files are private (0600: they hold mail) and
 * removed as soon as the message is done, and at exit.
 */
import { createHash, randomBytes, type Hash } from 'node:crypto';
import {
  closeSync,
  createReadStream,
  mkdirSync,
  openSync,
  rmSync,
  unlinkSync,
  writeSync,
  type ReadStream,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A literal kept in a file. */
export class SpilledLiteral {
  private fd: number | null;
  private hash: Hash | null = createHash('sha256');
  private digest = '';
  written = 0;

  constructor(
    readonly path: string,
    readonly size: number,
  ) {
    this.fd = openSync(path, 'w', 0o600);
  }

  write(chunk: Buffer): void {
    if (this.fd === null) throw new Error(`spill file ${this.path} is closed`);
    let off = 0;
    while (off < chunk.length) off += writeSync(this.fd, chunk, off, chunk.length - off);
    this.hash?.update(chunk);
    this.written += chunk.length;
  }

  end(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
    if (this.hash) this.digest = this.hash.digest('hex');
    this.hash = null;
  }

  get sha256(): string {
    return this.digest;
  }

  get length(): number {
    return this.size;
  }

  stream(): ReadStream {
    return createReadStream(this.path, { highWaterMark: 256 * 1024 });
  }

  dispose(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
    try {
      unlinkSync(this.path);
    } catch {
      // already gone
    }
  }
}

export interface SpillOptions {
  /** literals larger than this go to a file */
  threshold: number;
  dir: string;
}

let defaultDir: string | null = null;

/** A private temp dir for this process, removed at exit. */
export function spillDir(): string {
  if (defaultDir) return defaultDir;
  const dir = join(tmpdir(), `autoport-spill-${process.pid}-${randomBytes(4).toString('hex')}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  defaultDir = dir;
  return dir;
}

export const DEFAULT_SPILL_THRESHOLD = 4 * 1024 * 1024;

export function defaultSpill(): SpillOptions {
  return { threshold: DEFAULT_SPILL_THRESHOLD, dir: spillDir() };
}

let seq = 0;

export function newSpill(opts: SpillOptions, size: number): SpilledLiteral {
  return new SpilledLiteral(join(opts.dir, `${process.pid}-${++seq}.eml`), size);
}

/** Message bytes: in memory, or in a spill file. */
export type Body = Buffer | SpilledLiteral;

export function bodyLength(b: Body): number {
  return b.length;
}

export function disposeBody(b: Body): void {
  if (b instanceof SpilledLiteral) b.dispose();
}
