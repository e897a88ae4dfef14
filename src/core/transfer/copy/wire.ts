/**
 * The IMAP wire format, as much of it as the copy engine needs (RFC 3501 section 9).
 *
 * ResponseReader cuts the server's byte stream into responses: a response is a line, or a
 * line ending in a literal `{N}` followed by N raw bytes and the rest of the line, and so on
 * (RFC 3501 4.3). Literal bytes are copied once into a buffer of exactly N bytes, so a 50 MB
 * message costs 50 MB and no more, and they are never decoded: the copy stays byte for byte.
 *
 * parseValues turns the text and literals of a response into atoms, strings, lists and
 * buffers, the shape every FETCH, STATUS or response code is read from.
 */

import { newSpill, type SpilledLiteral, type SpillOptions } from './spill.js';

/** One response from the server: text pieces with literal buffers between them. */
export interface RawResponse {
  /** text pieces; pieces[i] is followed by literals[i] when there is one */
  pieces: string[];
  /** literal bytes; a large one may have gone to a spill file (see spill.ts) */
  literals: (Buffer | SpilledLiteral)[];
}

export interface ReaderLimits {
  /** longest line without a newline the reader accepts (hostile or broken server) */
  maxLineBytes: number;
  /** largest literal accepted (a message larger than this fails instead of exhausting memory) */
  maxLiteralBytes: number;
  /** where literals over a size go instead of memory; none by default */
  spill?: SpillOptions;
}

export const DEFAULT_READER_LIMITS: ReaderLimits = {
  maxLineBytes: 8 * 1024 * 1024,
  maxLiteralBytes: 1024 * 1024 * 1024,
};

export class WireError extends Error {
  override readonly name = 'WireError';
  readonly code = 'EPROTOCOL';
}

const LITERAL_AT_END = /\{(\d+)\+?\}$/;

export class ResponseReader {
  private pending: Buffer = Buffer.alloc(0);
  private pieces: string[] = [];
  private literals: (Buffer | SpilledLiteral)[] = [];
  private literal: Buffer | null = null;
  private spilled: SpilledLiteral | null = null;
  private literalFill = 0;
  /** total bytes received, for progress and rates */
  bytesIn = 0;

  constructor(
    private readonly onResponse: (r: RawResponse) => void,
    private readonly limits: ReaderLimits = DEFAULT_READER_LIMITS,
  ) {}

  /** bytes received but not yet part of a complete response (checked after STARTTLS) */
  get buffered(): number {
    return this.pending.length + (this.literal ? this.literalFill : 0) + this.pieces.length;
  }

  /** Drop what a broken connection left half-read (a spill file must not linger). */
  abort(): void {
    this.spilled?.dispose();
    this.spilled = null;
    for (const l of this.literals) if (!Buffer.isBuffer(l)) l.dispose();
    this.literals = [];
    this.pieces = [];
    this.literal = null;
  }

  push(chunk: Buffer): void {
    this.bytesIn += chunk.length;
    const data = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = Buffer.alloc(0);
    let pos = 0;
    while (pos < data.length) {
      if (this.spilled) {
        const sp = this.spilled;
        const take = Math.min(sp.size - sp.written, data.length - pos);
        sp.write(data.subarray(pos, pos + take));
        pos += take;
        if (sp.written === sp.size) {
          sp.end();
          this.literals.push(sp);
          this.spilled = null;
        }
        continue;
      }
      if (this.literal) {
        const take = Math.min(this.literal.length - this.literalFill, data.length - pos);
        data.copy(this.literal, this.literalFill, pos, pos + take);
        this.literalFill += take;
        pos += take;
        if (this.literalFill === this.literal.length) {
          this.literals.push(this.literal);
          this.literal = null;
        }
        continue;
      }
      const nl = data.indexOf(10, pos);
      if (nl < 0) {
        if (data.length - pos > this.limits.maxLineBytes) {
          throw new WireError(`server sent a line longer than ${this.limits.maxLineBytes} bytes`);
        }
        this.pending = Buffer.from(data.subarray(pos));
        return;
      }
      const end = nl > pos && data[nl - 1] === 13 ? nl - 1 : nl;
      const line = data.toString('latin1', pos, end);
      pos = nl + 1;
      const m = LITERAL_AT_END.exec(line);
      if (m) {
        const size = Number(m[1]);
        if (!Number.isSafeInteger(size) || size > this.limits.maxLiteralBytes) {
          throw new WireError(
            `server announced a literal of ${m[1]} bytes, over the limit of ${this.limits.maxLiteralBytes}`,
          );
        }
        this.pieces.push(line.slice(0, m.index));
        if (this.limits.spill && size > this.limits.spill.threshold) {
          this.spilled = newSpill(this.limits.spill, size);
          continue;
        }
        this.literal = Buffer.allocUnsafe(size);
        this.literalFill = 0;
        if (size === 0) {
          this.literals.push(this.literal);
          this.literal = null;
        }
        continue;
      }
      this.pieces.push(line);
      const response: RawResponse = { pieces: this.pieces, literals: this.literals };
      this.pieces = [];
      this.literals = [];
      this.onResponse(response);
    }
  }
}

/** A parsed IMAP value. Atoms and quoted strings are strings; NIL is null; literals are Buffers (or spill files). */
export type ImapValue = string | null | Buffer | SpilledLiteral | ImapValue[];

/**
 * Parse the values of a response, starting after `skip` characters of the first piece.
 * Atoms keep bracketed sections whole (`BODY[]`, `BODY[HEADER.FIELDS (A B)]`).
 */
export function parseValues(r: RawResponse, skip = 0): ImapValue[] {
  const root: ImapValue[] = [];
  const stack: ImapValue[][] = [root];
  for (let p = 0; p < r.pieces.length; p++) {
    const text = r.pieces[p] ?? '';
    let i = p === 0 ? skip : 0;
    while (i < text.length) {
      const c = text[i];
      const top = stack[stack.length - 1] as ImapValue[];
      if (c === ' ') {
        i++;
      } else if (c === '(') {
        const list: ImapValue[] = [];
        top.push(list);
        stack.push(list);
        i++;
      } else if (c === ')') {
        if (stack.length > 1) stack.pop();
        i++;
      } else if (c === '"') {
        let out = '';
        i++;
        while (i < text.length && text[i] !== '"') {
          if (text[i] === '\\' && i + 1 < text.length) i++;
          out += text[i];
          i++;
        }
        i++;
        top.push(out);
      } else {
        let j = i;
        let depth = 0;
        while (j < text.length) {
          const d = text[j];
          if (d === '[') depth++;
          else if (d === ']') depth = Math.max(0, depth - 1);
          else if (depth === 0 && (d === ' ' || d === '(' || d === ')')) break;
          j++;
        }
        const atom = text.slice(i, j);
        top.push(atom === 'NIL' ? null : atom);
        i = j;
      }
    }
    const lit = r.literals[p];
    if (lit) (stack[stack.length - 1] as ImapValue[]).push(lit);
  }
  return root;
}

export function asString(v: ImapValue | undefined): string {
  if (typeof v === 'string') return v;
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  return '';
}

export function asList(v: ImapValue | undefined): ImapValue[] {
  return Array.isArray(v) ? v : [];
}

/** Quote a string for a command: a quoted string when safe, else null (caller sends a literal). */
export function quoted(s: string): string | null {
  // eslint-disable-next-line no-control-regex -- exactly the bytes a quoted string may not hold
  if (/[\r\n\0]/.test(s) || /[^\x01-\x7f]/.test(s)) return null;
  return `"${s.replace(/[\\"]/g, (m) => `\\${m}`)}"`;
}

/** A string as an IMAP astring that is always safe to embed in a command line. */
export function quoteOrThrow(s: string): string {
  const q = quoted(s);
  if (q === null) throw new WireError(`cannot send ${JSON.stringify(s)} as a quoted string`);
  return q;
}

/** Expand a sequence set such as "1:3,7,9:10" (RFC 3501 9, sequence-set) into numbers. */
export function expandSet(set: string): number[] {
  const out: number[] = [];
  for (const part of set.split(',')) {
    if (!part) continue;
    const [a, b] = part.split(':');
    const lo = Number(a);
    const hi = b === undefined ? lo : Number(b);
    if (!Number.isSafeInteger(lo) || !Number.isSafeInteger(hi)) continue;
    const [from, to] = lo <= hi ? [lo, hi] : [hi, lo];
    for (let n = from; n <= to; n++) out.push(n);
  }
  return out;
}

/** Compress sorted or unsorted numbers into a sequence set ("1:3,7"). */
export function compressSet(nums: readonly number[]): string {
  const sorted = [...new Set(nums)].sort((x, y) => x - y);
  const parts: string[] = [];
  let i = 0;
  while (i < sorted.length) {
    const start = sorted[i] as number;
    let end = start;
    while (i + 1 < sorted.length && sorted[i + 1] === end + 1) {
      i++;
      end++;
    }
    parts.push(start === end ? String(start) : `${start}:${end}`);
    i++;
  }
  return parts.join(',');
}

/** A response code such as `[APPENDUID 38505 3955]` split into name and arguments. */
export interface ResponseCode {
  name: string;
  args: string;
}

export function parseResponseCode(text: string): { code?: ResponseCode; text: string } {
  if (!text.startsWith('[')) return { text };
  const close = text.indexOf(']');
  if (close < 0) return { text };
  const inner = text.slice(1, close);
  const sp = inner.indexOf(' ');
  const code =
    sp < 0
      ? { name: inner.toUpperCase(), args: '' }
      : { name: inner.slice(0, sp).toUpperCase(), args: inner.slice(sp + 1) };
  return { code, text: text.slice(close + 1).trim() };
}
