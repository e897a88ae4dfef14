/**
 * Reads a file as batches of lines, one chunk at a time, so neither the state snapshot nor
 * its journal is ever held as one string: a V8 string stops at about 512 MiB, which a JSON
 * document of about 480,000 accounts already passes. Lines split on LF bytes only (JSON
 * escapes CR, U+2028 and every other control character). A chunk is decoded up to its last
 * LF, which never falls inside a multi-byte character, and split there: one native call
 * per chunk, not one per line.
 */
import type { FileHandle } from 'node:fs/promises';

export interface LineBatch {
  /** complete lines, without their LF */
  lines: string[];
  /** byte offset of lines[0] */
  start: number;
  /** byte offset just past the last line's LF */
  end: number;
  /**
   * On the last batch only: bytes after the last LF (a write torn by a crash, or a file
   * still being written), decoded.
   */
  tail?: string;
}

export class LineTooLongError extends RangeError {
  constructor(
    readonly start: number,
    limit: number,
  ) {
    super(`line at byte ${start} is longer than ${limit} bytes`);
  }
}

export interface ReadLinesOptions {
  /** first byte to read (default 0) */
  from?: number;
  chunkBytes?: number;
  /** a longer line throws LineTooLongError instead of growing without bound (default 64 MiB) */
  maxLineBytes?: number;
}

export async function* readLineBatches(
  fh: FileHandle,
  options: ReadLinesOptions = {},
): AsyncGenerator<LineBatch> {
  const chunkBytes = options.chunkBytes ?? 1 << 20;
  const maxLine = options.maxLineBytes ?? 64 << 20;
  const buf = Buffer.allocUnsafe(chunkBytes);
  let left: Buffer = Buffer.alloc(0);
  let pos = options.from ?? 0;
  let lineStart = pos;
  for (;;) {
    const { bytesRead } = await fh.read(buf, 0, chunkBytes, pos);
    if (bytesRead === 0) break;
    pos += bytesRead;
    const chunk = buf.subarray(0, bytesRead);
    const data = left.length > 0 ? Buffer.concat([left, chunk]) : chunk;
    const last = data.lastIndexOf(10);
    if (last < 0) {
      if (data.length > maxLine) throw new LineTooLongError(lineStart, maxLine);
      left = Buffer.from(data); // `buf` is read into again
      continue;
    }
    const lines = data.toString('utf8', 0, last).split('\n');
    const start = lineStart;
    lineStart += last + 1;
    left = Buffer.from(data.subarray(last + 1));
    yield { lines, start, end: lineStart };
  }
  if (left.length > 0) yield { lines: [], start: lineStart, end: lineStart, tail: left.toString() };
}

/** Byte offset of lines[i] in a batch. */
export function offsetOf(batch: LineBatch, i: number): number {
  let at = batch.start;
  for (let j = 0; j < i; j++) at += Buffer.byteLength(batch.lines[j] as string, 'utf8') + 1;
  return at;
}
