/**
 * Bytes read from a server, cut into lines and literals. Pure (no socket), so the cuts
 * can be tested on every split of the input.
 *
 * A line ends at LF (a CR before it is dropped), or with `crlfOnly` only at CRLF (POP3
 * bodies keep a bare LF inside the line, RFC 1939 3). A line longer than `maxLine` is an
 * error as soon as it is over the cap, without waiting for its end: a server that never
 * ends its line must not grow the buffer without bound.
 */
import { NetError } from './errors.js';

const EMPTY = Buffer.alloc(0);

export interface Line {
  /** the line without its ending */
  text: Buffer;
  /** bytes it took from the buffer, ending included */
  size: number;
}

export class LineBuffer {
  private buf: Buffer = EMPTY;

  constructor(
    readonly maxLine: number,
    private readonly label: string,
  ) {}

  get length(): number {
    return this.buf.length;
  }

  push(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
  }

  /** No LF yet, and the line is already over the cap (a CR at the cap may be its end). */
  overlong(max = this.maxLine): boolean {
    if (this.buf.length < max + 1 || this.buf.indexOf(0x0a) >= 0) return false;
    return this.partOver(max);
  }

  /** The whole buffer, one unfinished line, is over `max` (a CR at the cap may be its end). */
  private partOver(max: number): boolean {
    const n = this.buf.length;
    return n > max + 1 || (n === max + 1 && this.buf[max] !== 0x0d);
  }

  tooLong(what?: string, max = this.maxLine): NetError {
    return new NetError('ETOOLONG', `${this.label} sent a line longer than ${max} bytes`, {
      phase: 'read',
      what,
      limit: max,
    });
  }

  /**
   * The next whole line, or undefined when none is complete yet. Throws ETOOLONG, also
   * for an unfinished line already over `max`.
   */
  line(crlfOnly = false, what?: string, max = this.maxLine): Line | undefined {
    let from = 0;
    for (;;) {
      const lf = this.buf.indexOf(0x0a, from);
      if (lf < 0) break;
      const cr = lf > 0 && this.buf[lf - 1] === 0x0d;
      const end = cr ? lf - 1 : lf;
      // checked here too: whether the line arrived whole depends on the chunks
      if (end > max) throw this.tooLong(what, max);
      if (crlfOnly && !cr) {
        from = lf + 1;
        continue;
      }
      const text = this.buf.subarray(0, end);
      this.buf = this.buf.subarray(lf + 1);
      return { text, size: lf + 1 };
    }
    if (this.partOver(max)) throw this.tooLong(what, max);
    return undefined;
  }

  /** Exactly `n` raw bytes (a literal), or undefined until they are all here. */
  take(n: number): Buffer | undefined {
    if (this.buf.length < n) return undefined;
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /** Everything buffered; the buffer is empty afterwards. */
  drain(): Buffer {
    const out = this.buf;
    this.buf = EMPTY;
    return out;
  }

  /** Keep only a copy of what is left, so a big chunk already consumed can be freed. */
  compact(): void {
    if (this.buf.length > 0 && this.buf.byteOffset > 0) this.buf = Buffer.from(this.buf);
  }
}
