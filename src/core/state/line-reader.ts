/**
 * Reads a file line by line in fixed-size chunks, so neither the state snapshot nor its
 * journal is ever held as one string: a V8 string stops at about 512 MiB, which a JSON
 * document of about 480,000 accounts already passes. Lines split on LF bytes only (JSON
 * escapes CR, U+2028 and every other control character), and each line is decoded on its
 * own, so a multi-byte character cut by a chunk boundary stays whole.
 */
import type { FileHandle } from 'node:fs/promises';

export interface Line {
  text: string;
  /** byte offset of the line's first byte */
  start: number;
  /** byte offset just past the line's LF (or past its last byte when unterminated) */
  end: number;
  /** false for a last line without LF: a write torn by a crash, or a file still growing */
  terminated: boolean;
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

export async function* readLines(
  fh: FileHandle,
  options: ReadLinesOptions = {},
): AsyncGenerator<Line> {
  const chunkBytes = options.chunkBytes ?? 1 << 20;
  const maxLine = options.maxLineBytes ?? 64 << 20;
  const buf = Buffer.allocUnsafe(chunkBytes);
  let carry: Buffer[] = [];
  let carryBytes = 0;
  let pos = options.from ?? 0;
  let lineStart = pos;
  for (;;) {
    const { bytesRead } = await fh.read(buf, 0, chunkBytes, pos);
    if (bytesRead === 0) break;
    let from = 0;
    for (;;) {
      const nl = buf.indexOf(10, from);
      if (nl < 0 || nl >= bytesRead) break;
      const piece = buf.subarray(from, nl);
      let text: string;
      if (carryBytes > 0) {
        text = Buffer.concat([...carry, piece]).toString('utf8');
        carry = [];
        carryBytes = 0;
      } else text = piece.toString('utf8');
      const end = pos + nl + 1;
      yield { text, start: lineStart, end, terminated: true };
      lineStart = end;
      from = nl + 1;
    }
    if (from < bytesRead) {
      carryBytes += bytesRead - from;
      if (carryBytes > maxLine) throw new LineTooLongError(lineStart, maxLine);
      carry.push(Buffer.from(buf.subarray(from, bytesRead)));
    }
    pos += bytesRead;
  }
  if (carryBytes > 0) {
    yield {
      text: Buffer.concat(carry).toString('utf8'),
      start: lineStart,
      end: pos,
      terminated: false,
    };
  }
}
