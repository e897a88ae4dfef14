/**
 * The IMAP command reader for the not-authenticated state (RFC 3501 9, RFC 7888 for
 * LITERAL+). It only has to understand what a client may send before login, so it is
 * small and strict: every line, literal, tag and string is capped, and anything beyond a
 * cap is an error event instead of memory use. Bytes after the last complete command stay
 * buffered: after a login they go to the backend untouched, after STARTTLS they are an
 * injection attempt (protocol-notes.md, "STARTTLS and TLS").
 */
import type { PreauthLimits } from '../limits.js';

export type ImapArg =
  | { kind: 'atom'; value: string }
  | { kind: 'string'; value: Buffer; literal: boolean }
  | { kind: 'list'; items: ImapArg[] }
  | { kind: 'nil' };

export interface ImapCommand {
  tag: string;
  /** upper-cased */
  name: string;
  args: ImapArg[];
}

export type ImapParseEvent =
  | { kind: 'command'; command: ImapCommand }
  /** a synchronising literal {n} was announced and accepted: send "+ ..." (RFC 3501 7.5) */
  | { kind: 'continue' }
  /** a raw line, in line mode (SASL responses, RFC 3501 6.2.2) */
  | { kind: 'line'; line: Buffer }
  /**
   * a syntax or size error; the command is dropped. `tag` when it could be read.
   * `fatal`: the stream can no longer be followed (close after replying).
   */
  | { kind: 'error'; tag?: string; text: string; fatal: boolean };

type Piece = { text: Buffer } | { literal: Buffer };

const CR = 0x0d;
const LF = 0x0a;
const LITERAL_MARK = /\{(\d{1,10})(\+?)\}$/;
/** tag: ASTRING-CHAR except "+" (RFC 3501 9): no CTL, SP, ( ) { % * " \ + */
// eslint-disable-next-line no-control-regex
const BAD_TAG_CHAR = /[\x00-\x20\x7f-\xff(){%*"\\+]/;
/** ATOM-CHAR (RFC 3501 9); "]" is resp-special but allowed in an astring */
// eslint-disable-next-line no-control-regex
const ATOM_CHAR = /[^\x00-\x20\x7f(){%*"\\]/;

export class ImapCommandParser {
  private buf: Buffer = Buffer.alloc(0);
  private pieces: Piece[] = [];
  private pieceBytes = 0;
  private literalNeed = -1;
  /** literals announced in the command being read */
  private literals = 0;
  private mode: 'command' | 'line' = 'command';
  /** after a fatal error nothing more is parsed */
  private dead = false;

  constructor(private readonly limits: PreauthLimits) {}

  feed(chunk: Buffer): void {
    if (this.dead) return;
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
  }

  /** Switch to line mode for the next line only (SASL continuation). */
  expectLine(): void {
    this.mode = 'line';
  }

  /** bytes received and not yet returned as part of an event */
  get buffered(): number {
    return this.buf.length + this.pieceBytes;
  }

  /** Hand over what is buffered beyond the last event (after login, to the backend). */
  takeRemaining(): Buffer {
    const rest = this.buf;
    this.buf = Buffer.alloc(0);
    return rest;
  }

  /**
   * The next event, or undefined when more bytes are needed. A loop, not recursion: one
   * write can hold thousands of {0+} lines, and each only adds a piece to the command.
   */
  next(): ImapParseEvent | undefined {
    while (!this.dead) {
      if (!this.takeLiteral()) return undefined;
      const line = this.takeLine();
      if (line === undefined) return undefined;
      if (!Buffer.isBuffer(line)) return line;
      if (this.mode === 'line') {
        this.mode = 'command';
        return { kind: 'line', line };
      }
      const ev = this.onLine(line);
      if (ev) return ev;
    }
    return undefined;
  }

  /** Move an announced literal into the pieces; false while its bytes are still coming. */
  private takeLiteral(): boolean {
    if (this.literalNeed < 0) return true;
    if (this.buf.length < this.literalNeed) return false;
    const lit = Buffer.from(this.buf.subarray(0, this.literalNeed));
    this.buf = this.buf.subarray(this.literalNeed);
    this.literalNeed = -1;
    this.pieces.push({ literal: lit });
    this.pieceBytes += lit.length;
    return true;
  }

  /**
   * The next line without its line end, a fatal error, or undefined for "wait". The cap is
   * on the line without CRLF, checked the same way whether or not the LF has arrived, so
   * how the bytes were cut into chunks never changes the outcome.
   */
  private takeLine(): Buffer | ImapParseEvent | undefined {
    const max = this.mode === 'line' ? this.limits.maxSaslBytes : this.limits.maxLineBytes;
    const lf = this.buf.indexOf(LF);
    if (lf < 0) {
      const n = this.buf.length;
      if (n > max + 1 || (n === max + 1 && this.buf[max] !== CR))
        return this.fatal('Line too long.');
      return undefined;
    }
    const end = lf > 0 && this.buf[lf - 1] === CR ? lf - 1 : lf;
    if (end > max) return this.fatal('Line too long.');
    const line = Buffer.from(this.buf.subarray(0, end));
    this.buf = this.buf.subarray(lf + 1);
    return line;
  }

  /** A command line; undefined when it announced a {n+} literal (the command goes on). */
  private onLine(line: Buffer): ImapParseEvent | undefined {
    const text = line.toString('latin1');
    const mark = LITERAL_MARK.exec(text);
    if (!mark) {
      this.pieces.push({ text: line });
      const pieces = this.pieces;
      this.reset();
      return parseCommand(pieces, this.limits);
    }
    const size = Number(mark[1]);
    const sync = mark[2] !== '+';
    const head = line.subarray(0, line.length - mark[0].length);
    const refusal = this.refuseLiteral(head, size, sync);
    if (refusal) return refusal;
    this.pieces.push({ text: head });
    this.pieceBytes += head.length;
    this.literals++;
    this.literalNeed = size;
    return sync ? { kind: 'continue' } : undefined;
  }

  /**
   * Why a literal announced after `head` cannot be accepted, as the event to return. For
   * {n} the client waits for "+" and will not send the bytes: a BAD is enough, and no
   * "+" is written for a command that cannot succeed (each "+" is a write the client
   * provoked with 5 bytes). For {n+} the bytes are already on their way and cannot be
   * told apart from commands (RFC 7888 4): the stream is lost.
   */
  private refuseLiteral(head: Buffer, size: number, sync: boolean): ImapParseEvent | undefined {
    const tag = this.tagOf(head);
    let text: string | undefined;
    if (size > this.limits.maxLiteralBytes) text = 'Literal too big.';
    else if (
      this.pieceBytes + head.length + size >
      this.limits.maxLineBytes + this.limits.maxLiteralBytes
    )
      text = 'Literal too big.';
    else if (this.literals >= this.limits.maxLiteralsPerCommand) text = 'Too many literals.';
    else if (sync && tag === undefined) text = 'Invalid tag.';
    if (text === undefined) return undefined;
    this.reset();
    if (sync) return { kind: 'error', tag, text, fatal: false };
    return this.fatal(text, tag);
  }

  private tagOf(head: Buffer): string | undefined {
    const first = this.pieces.length > 0 && 'text' in this.pieces[0]! ? this.pieces[0].text : head;
    const sp = first.indexOf(0x20);
    const tag = first.subarray(0, sp < 0 ? first.length : sp).toString('latin1');
    return validTag(tag, this.limits) ? tag : undefined;
  }

  private reset(): void {
    this.pieces = [];
    this.pieceBytes = 0;
    this.literalNeed = -1;
    this.literals = 0;
  }

  private fatal(text: string, tag?: string): ImapParseEvent {
    this.dead = true;
    this.buf = Buffer.alloc(0);
    this.reset();
    return { kind: 'error', tag, text, fatal: true };
  }
}

/**
 * Upper-case a-z only: String.prototype.toUpperCase maps U+017F and U+0131 to "S" and
 * "I", which would make the 8-bit atom "\u017FTARTTLS" run STARTTLS.
 */
function asciiUpper(s: string): string {
  return s.replace(/[a-z]+/g, (m) => m.toUpperCase());
}

export function validTag(tag: string, limits: Pick<PreauthLimits, 'maxTagBytes'>): boolean {
  return tag.length > 0 && tag.length <= limits.maxTagBytes && !BAD_TAG_CHAR.test(tag);
}

class SyntaxError_ extends Error {}

/** Tokens of one command; literals arrive as pieces of their own. */
function parseCommand(pieces: Piece[], limits: PreauthLimits): ImapParseEvent {
  const first = pieces[0];
  const firstText = first && 'text' in first ? first.text.toString('latin1') : '';
  const sp = firstText.indexOf(' ');
  const tag = sp < 0 ? firstText : firstText.slice(0, sp);
  if (!validTag(tag, limits)) return { kind: 'error', text: 'Invalid tag.', fatal: false };
  for (const p of pieces) {
    const bytes = 'text' in p ? p.text : p.literal;
    if (bytes.includes(0))
      return { kind: 'error', tag, text: 'NUL characters are not allowed.', fatal: false };
  }
  const cur = new Cursor(pieces, tag.length);
  try {
    if (!cur.eatSpace()) throw new SyntaxError_('Missing command.');
    const name = cur.atom();
    if (!name) throw new SyntaxError_('Missing command.');
    const args: ImapArg[] = [];
    while (!cur.atEnd()) {
      if (!cur.eatSpace()) throw new SyntaxError_('Expected a space between arguments.');
      args.push(cur.arg(0));
    }
    return { kind: 'command', command: { tag, name: asciiUpper(name), args } };
  } catch (err) {
    if (err instanceof SyntaxError_) return { kind: 'error', tag, text: err.message, fatal: false };
    throw err;
  }
}

class Cursor {
  private i = 0;
  private off: number;
  constructor(
    private readonly pieces: Piece[],
    start: number,
  ) {
    this.off = start;
  }

  private get piece(): Piece | undefined {
    return this.pieces[this.i];
  }

  atEnd(): boolean {
    const p = this.piece;
    if (!p) return true;
    return 'text' in p && this.off >= p.text.length && this.i === this.pieces.length - 1;
  }

  private peek(): number | undefined {
    const p = this.piece;
    if (!p || !('text' in p)) return undefined;
    return p.text[this.off];
  }

  eatSpace(): boolean {
    if (this.peek() !== 0x20) return false;
    this.off++;
    return true;
  }

  atom(): string {
    const p = this.piece;
    if (!p || !('text' in p)) return '';
    const start = this.off;
    while (this.off < p.text.length && ATOM_CHAR.test(String.fromCharCode(p.text[this.off]!)))
      this.off++;
    return p.text.subarray(start, this.off).toString('utf8');
  }

  arg(depth: number): ImapArg {
    const p = this.piece;
    if (!p) throw new SyntaxError_('Missing argument.');
    if ('text' in p && this.off >= p.text.length) {
      // the text piece ended with a literal marker: the literal is next
      const lit = this.pieces[this.i + 1];
      if (lit && 'literal' in lit) {
        this.i += 2;
        this.off = 0;
        return { kind: 'string', value: lit.literal, literal: true };
      }
      throw new SyntaxError_('Missing argument.');
    }
    if (!('text' in p)) throw new SyntaxError_('Unexpected literal.');
    const c = p.text[this.off];
    if (c === 0x22) return this.quoted(p.text);
    if (c === 0x28) return this.list(depth);
    const a = this.atom();
    if (a === '') throw new SyntaxError_('Invalid characters in argument.');
    return asciiUpper(a) === 'NIL' ? { kind: 'nil' } : { kind: 'atom', value: a };
  }

  private quoted(text: Buffer): ImapArg {
    this.off++;
    const out: number[] = [];
    for (;;) {
      const c = text[this.off++];
      if (c === undefined) throw new SyntaxError_('Unterminated quoted string.');
      if (c === 0x22) break;
      if (c === 0x5c) {
        const e = text[this.off++];
        // RFC 3501 9: only \" and \\ are quoted-specials
        if (e !== 0x22 && e !== 0x5c) throw new SyntaxError_('Invalid escape in quoted string.');
        out.push(e);
      } else out.push(c);
    }
    return { kind: 'string', value: Buffer.from(out), literal: false };
  }

  private list(depth: number): ImapArg {
    if (depth >= 4) throw new SyntaxError_('Lists nested too deeply.');
    this.off++;
    const items: ImapArg[] = [];
    for (;;) {
      if (this.peek() === 0x29) {
        this.off++;
        return { kind: 'list', items };
      }
      if (items.length > 0 && !this.eatSpace()) {
        if (this.atEnd()) throw new SyntaxError_('Unterminated list.');
        throw new SyntaxError_('Expected a space in a list.');
      }
      if (items.length >= 64) throw new SyntaxError_('List too long.');
      items.push(this.arg(depth + 1));
    }
  }
}

/** An argument as text (atom, quoted or literal), or undefined for NIL and lists. */
export function argText(a: ImapArg | undefined): string | undefined {
  if (!a) return undefined;
  if (a.kind === 'atom') return a.value;
  if (a.kind === 'string') return a.value.toString('utf8');
  return undefined;
}
