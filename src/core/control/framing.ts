/**
 * Newline-delimited JSON for the control socket (protocol.ts): splitting a byte stream into
 * lines with a hard cap, so neither side buffers without bound for a peer that never sends
 * a newline.
 */
import { MAX_LINE_BYTES } from './protocol.js';

const NL = 0x0a;

export class LineReader {
  private parts: Buffer[] = [];
  private size = 0;

  constructor(private readonly maxBytes = MAX_LINE_BYTES) {}

  /**
   * The lines completed by `chunk` (without the newline, empty ones dropped), or 'overflow'
   * once a line passes maxBytes; after an overflow the reader is of no further use.
   */
  push(chunk: Buffer): string[] | 'overflow' {
    const lines: string[] = [];
    let start = 0;
    for (let nl = chunk.indexOf(NL); nl >= 0; nl = chunk.indexOf(NL, start)) {
      const piece = chunk.subarray(start, nl);
      if (this.size + piece.length > this.maxBytes) return 'overflow';
      const line =
        this.parts.length === 0
          ? piece.toString('utf8')
          : Buffer.concat([...this.parts, piece]).toString('utf8');
      this.parts = [];
      this.size = 0;
      if (line.trim() !== '') lines.push(line);
      start = nl + 1;
    }
    const rest = chunk.subarray(start);
    if (this.size + rest.length > this.maxBytes) return 'overflow';
    if (rest.length > 0) {
      this.parts.push(rest);
      this.size += rest.length;
    }
    return lines;
  }
}

/** One message as a line; JSON.stringify escapes every newline inside strings. */
export function frame(message: unknown): string {
  return `${JSON.stringify(message)}\n`;
}
