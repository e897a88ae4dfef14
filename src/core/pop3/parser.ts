/**
 * POP3 command lines before login (RFC 1939 3, RFC 2449 3): a keyword, a space, the rest.
 * Lines are capped (RFC 2449 allows 255 octets for commands; SASL responses are longer,
 * hence the larger pre-auth cap), NUL is refused, and bytes beyond the last line stay
 * buffered (for the backend after login, or refused after STLS).
 */
import type { PreauthLimits } from '../limits.js';

export type Pop3ParseEvent =
  | { kind: 'command'; name: string; arg: string; raw: Buffer }
  | { kind: 'error'; text: string; fatal: boolean };

export interface Pop3Command {
  name: string;
  arg: string;
}

export class Pop3LineParser {
  private buf: Buffer = Buffer.alloc(0);
  private dead = false;

  constructor(private readonly limits: PreauthLimits) {}

  feed(chunk: Buffer): void {
    if (this.dead) return;
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
  }

  get buffered(): number {
    return this.buf.length;
  }

  takeRemaining(): Buffer {
    const rest = this.buf;
    this.buf = Buffer.alloc(0);
    return rest;
  }

  next(): Pop3ParseEvent | undefined {
    if (this.dead) return undefined;
    // The cap is on the line without its CRLF, checked the same way before and after the
    // LF arrives, so how the bytes were cut into chunks never changes the outcome.
    const max = Math.max(this.limits.maxLineBytes, this.limits.maxSaslBytes);
    const lf = this.buf.indexOf(0x0a);
    if (lf < 0) {
      const n = this.buf.length;
      if (n > max + 1 || (n === max + 1 && this.buf[max] !== 0x0d)) return this.fatal();
      return undefined;
    }
    const end = lf > 0 && this.buf[lf - 1] === 0x0d ? lf - 1 : lf;
    if (end > max) return this.fatal();
    const raw = Buffer.from(this.buf.subarray(0, end));
    this.buf = this.buf.subarray(lf + 1);
    if (raw.includes(0))
      return { kind: 'error', text: 'NUL characters are not allowed.', fatal: false };
    const line = raw.toString('utf8');
    const sp = line.indexOf(' ');
    const word = sp < 0 ? line : line.slice(0, sp);
    // RFC 1939 3: keywords are 3-4 printable characters; RFC 2449 allows up to 40 for
    // extensions. Checked before upper-casing: toUpperCase() maps U+017F to "S".
    if (!/^[A-Za-z0-9-]{1,40}$/.test(word)) {
      return { kind: 'command', name: '', arg: '', raw };
    }
    return {
      kind: 'command',
      name: word.toUpperCase(),
      arg: sp < 0 ? '' : line.slice(sp + 1),
      raw,
    };
  }

  private fatal(): Pop3ParseEvent {
    this.dead = true;
    this.buf = Buffer.alloc(0);
    return { kind: 'error', text: 'Line too long.', fatal: true };
  }
}
