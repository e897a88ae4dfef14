/**
 * What the gateway relays after DATA, made safe against SMTP smuggling (SEC Consult,
 * December 2023): the sender and the backend must agree on where a message ends.
 *
 * The front end (smtp-server) ends DATA only on CRLF.CRLF (RFC 5321 4.1.1.4) and hands
 * us the message dot-unstuffed. A backend that also accepted LF.LF or CR.CR as the end
 * would see a second message in bytes the gateway took for one. So before relaying:
 *
 *   - every line ends in CRLF: a bare LF or a bare CR is turned into CRLF ("normalize",
 *     the default) or the message is refused ("reject"). Normalising loses nothing (the
 *     line breaks stay where the sender put them), so broken but honest senders are not
 *     bounced, while RFC 5321 2.3.8 forbids bare CR and LF anyway. Postfix 3.9 made the
 *     same choice (smtpd_forbid_bare_newline = normalize).
 *   - dot-stuffing is applied again (RFC 5321 4.5.2): a line starting with "." gets a
 *     second one, so no line of the message can read as the end of DATA.
 *
 * Either way the backend receives nothing but CRLF lines and exactly one terminator.
 */
export type BareLineEndingPolicy = 'normalize' | 'reject';

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const CRLF = Buffer.from('\r\n');
const DOT_BYTE = Buffer.from('.');

/** A bare CR or LF in a message, under the "reject" policy. */
export class BareLineEndingError extends Error {
  override readonly name = 'BareLineEndingError';
  constructor(readonly offset: number) {
    super(`bare CR or LF at byte ${offset} of the message`);
  }
}

/**
 * Turns the unstuffed message, chunk by chunk, into what goes on the wire after the
 * backend's 354: CRLF lines, dot-stuffed, then CRLF.CRLF from end().
 */
export class DataEncoder {
  /** bare CR or LF seen (and normalised) so far */
  bareLineEndings = 0;
  private atLineStart = true;
  /** a CR ended the last chunk: CRLF or bare CR is decided by the next byte */
  private pendingCr = false;
  private offset = 0;
  private ended = false;

  constructor(private readonly policy: BareLineEndingPolicy = 'normalize') {}

  private bare(at: number): void {
    this.bareLineEndings++;
    if (this.policy === 'reject') throw new BareLineEndingError(at);
  }

  /** Encode one chunk; throws BareLineEndingError under "reject". */
  push(chunk: Buffer): Buffer {
    if (this.ended) throw new Error('DataEncoder: push() after end()');
    const len = chunk.length;
    // Fast path, the usual case: CRLF lines only and no line starting with a dot. The
    // chunk goes out as it is, without a copy.
    if (len > 0 && !this.pendingCr && chunk[0] !== LF && !(this.atLineStart && chunk[0] === DOT)) {
      if (plainCrlfLines(chunk)) {
        this.atLineStart = chunk[len - 1] === LF;
        this.offset += len;
        return chunk;
      }
    }
    const out: Buffer[] = [];
    let i = 0;
    if (this.pendingCr && len > 0) {
      this.pendingCr = false;
      out.push(CRLF);
      if (chunk[0] === LF) i = 1;
      else this.bare(this.offset - 1);
      this.atLineStart = true;
    }
    while (i < len) {
      if (this.atLineStart) {
        if (chunk[i] === DOT) out.push(DOT_BYTE);
        this.atLineStart = false;
      }
      const j = nextLineBreak(chunk, i);
      if (j < 0) {
        out.push(chunk.subarray(i));
        break;
      }
      if (j > i) out.push(chunk.subarray(i, j));
      if (chunk[j] === LF) {
        this.bare(this.offset + j);
        out.push(CRLF);
        i = j + 1;
      } else if (j + 1 === len) {
        this.pendingCr = true;
        i = len;
        break;
      } else {
        out.push(CRLF);
        if (chunk[j + 1] === LF) i = j + 2;
        else {
          this.bare(this.offset + j);
          i = j + 1;
        }
      }
      this.atLineStart = true;
    }
    this.offset += len;
    return out.length === 1 ? out[0]! : Buffer.concat(out);
  }

  /** The last line's CRLF when the message did not end with one, then the terminator. */
  end(): Buffer {
    this.ended = true;
    if (this.pendingCr) {
      // smtp-server hands over the last line with its CRLF, so a CR with nothing after
      // it ends no line: it is bare.
      this.pendingCr = false;
      this.bare(this.offset - 1);
      return Buffer.from('\r\n.\r\n');
    }
    return Buffer.from(this.atLineStart ? '.\r\n' : '\r\n.\r\n');
  }
}

/**
 * True when every CR in the chunk is followed by LF, every LF preceded by CR, and no line
 * (after the first) starts with a dot: the first CR after each line start must sit right
 * before the line's LF.
 */
function plainCrlfLines(buf: Buffer): boolean {
  let from = 0;
  for (;;) {
    const lf = buf.indexOf(LF, from);
    const cr = buf.indexOf(CR, from);
    if (lf < 0) return cr < 0;
    if (cr !== lf - 1 || buf[lf + 1] === DOT) return false;
    from = lf + 1;
  }
}

function nextLineBreak(buf: Buffer, from: number): number {
  const cr = buf.indexOf(CR, from);
  const lf = buf.indexOf(LF, from);
  if (cr < 0) return lf;
  if (lf < 0) return cr;
  return cr < lf ? cr : lf;
}

/** Encode a whole message at once (tests, small messages). */
export function encodeData(message: Buffer, policy: BareLineEndingPolicy = 'normalize'): Buffer {
  const enc = new DataEncoder(policy);
  return Buffer.concat([enc.push(message), enc.end()]);
}
