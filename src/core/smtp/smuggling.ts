/**
 * Where a message ends, and what the backend gets of it: the defence against SMTP
 * smuggling (SEC Consult, December 2023), where the client and the backend disagree on
 * the end of DATA and the backend finds a second message in bytes the gateway took for
 * one.
 *
 * DataScanner reads what the client sends after 354, exactly as it came off the socket,
 * and turns it into what goes to the backend after the backend's 354:
 *
 *   - DATA ends only on CRLF "." CRLF (RFC 5321 4.1.1.4), or "." CRLF right after the
 *     354. A dot line after a bare LF or CR, or a dot followed by a bare LF, is not an
 *     end.
 *   - every line ends in CRLF: a bare LF or a bare CR becomes CRLF, and is counted. Under
 *     the "reject" policy the relay drops a message that had any (relay.ts); normalising
 *     loses nothing (the line breaks stay where the sender put them) and RFC 5321 2.3.8
 *     forbids bare CR and LF anyway. Postfix 3.9 made the same choice
 *     (smtpd_forbid_bare_newline = normalize).
 *   - dot-stuffing (RFC 5321 4.5.2) is kept as the client sent it: a stuffed line goes to
 *     the backend stuffed, so the backend removes the same dot the client added. A line
 *     that is a lone "." but no end of data (it follows a bare line break, or ends in
 *     one) is stuffed to "..", so that after normalising it cannot read as the end.
 *
 * So the backend receives nothing but CRLF lines and, from the relay, exactly one
 * terminator. In the usual case (CRLF lines only) every chunk goes on unchanged, without
 * a copy; the scan costs two Buffer.indexOf calls per line instead of a loop over every
 * byte, which is what makes relaying a 1 MB message cheap.
 */
export type BareLineEndingPolicy = 'normalize' | 'reject';

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const CR_BYTE = Buffer.from('\r');
const LF_BYTE = Buffer.from('\n');
const DOT_BYTE = Buffer.from('.');
/** a lone dot line whose line break was bare, stuffed and normalised */
const STUFFED_DOT_LINE = Buffer.from('..\r\n');
const EMPTY = Buffer.alloc(0);

export interface ScanStep {
  /** bytes for the backend: CRLF lines, dot-stuffed, without the terminator; may be empty */
  out: Buffer;
  /** once the end of data was seen: the bytes the client sent after it (its next commands) */
  rest?: Buffer;
}

export class DataScanner {
  /**
   * Bytes of the message as the client meant it: its wire bytes without stuffing dots and
   * without the terminator (what SIZE limits, RFC 1870), counted before normalising.
   */
  bytes = 0;
  /** bare CR or LF seen (and normalised) so far */
  bareLineEndings = 0;
  /** the end of data was seen */
  ended = false;
  private lineStart = true;
  /** the line that starts now follows a real CRLF (or the 354): only then can "." CRLF end DATA */
  private afterCrlf = true;
  /** the last bytes of the previous chunk, when they could not be decided without the next one */
  private held: Buffer | undefined;

  push(chunk: Buffer): ScanStep {
    if (this.ended) throw new Error('DataScanner: push() after the end of data');
    let buf = chunk;
    if (this.held) {
      // At most two bytes (a CR, or a line's "." or ".\r"): the copy is rare and small.
      buf = Buffer.concat([this.held, chunk]);
      this.held = undefined;
    }
    const len = buf.length;
    const out: Buffer[] = [];
    let seg = 0; // start of the bytes not yet in `out` that go on unchanged
    let i = 0;
    let stuffing = 0;
    let cr = -2; // next CR / LF at or after i; -2 unknown, -1 none left in buf
    let lf = -2;
    let done = len; // bytes of buf this push accounts for
    let rest: Buffer | undefined;
    while (i < len) {
      if (this.lineStart) {
        if (buf[i] === DOT) {
          if (i + 1 >= len) {
            done = this.hold(buf, i, seg, out);
            seg = len;
            break;
          }
          const b1 = buf[i + 1];
          if (b1 !== CR && b1 !== LF) {
            // A stuffing dot: it goes on as it is and is no part of the message.
            stuffing++;
            this.lineStart = false;
            i++;
            continue;
          }
          if (b1 === LF) {
            out.push(buf.subarray(seg, i), STUFFED_DOT_LINE);
            this.bareLineEndings++;
            i += 2;
            seg = i;
            this.afterCrlf = false;
            continue;
          }
          if (i + 2 >= len) {
            done = this.hold(buf, i, seg, out);
            seg = len;
            break;
          }
          if (buf[i + 2] === LF) {
            if (this.afterCrlf) {
              out.push(buf.subarray(seg, i));
              this.ended = true;
              rest = buf.subarray(i + 3);
              done = i;
              seg = len;
              break;
            }
            // "." CRLF after a bare line break: a line holding a dot, stuffed.
            out.push(buf.subarray(seg, i), DOT_BYTE);
            seg = i;
            i += 3;
            this.afterCrlf = true;
            continue;
          }
          out.push(buf.subarray(seg, i), STUFFED_DOT_LINE);
          this.bareLineEndings++;
          i += 2;
          seg = i;
          this.afterCrlf = false;
          continue;
        }
        this.lineStart = false;
      }
      if (cr !== -1 && cr < i) cr = buf.indexOf(CR, i);
      if (lf !== -1 && lf < i) lf = buf.indexOf(LF, i);
      if (lf !== -1 && (cr === -1 || lf < cr)) {
        out.push(buf.subarray(seg, lf), CR_BYTE);
        this.bareLineEndings++;
        seg = lf;
        i = lf + 1;
        this.lineStart = true;
        this.afterCrlf = false;
        continue;
      }
      if (cr === -1) break; // the rest of buf is inside one line
      if (cr + 1 >= len) {
        done = this.hold(buf, cr, seg, out);
        seg = len;
        break;
      }
      this.lineStart = true;
      if (buf[cr + 1] === LF) {
        i = cr + 2;
        this.afterCrlf = true;
        continue;
      }
      out.push(buf.subarray(seg, cr + 1), LF_BYTE);
      this.bareLineEndings++;
      seg = cr + 1;
      i = cr + 1;
      this.afterCrlf = false;
    }
    if (seg < len) out.push(seg === 0 ? buf : buf.subarray(seg));
    this.bytes += done - stuffing;
    const parts = out.filter((b) => b.length > 0);
    const bytes =
      parts.length === 0 ? EMPTY : parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    return rest ? { out: bytes, rest } : { out: bytes };
  }

  /** Keep buf[from..] for the next chunk; returns how many bytes of buf were dealt with. */
  private hold(buf: Buffer, from: number, seg: number, out: Buffer[]): number {
    out.push(buf.subarray(seg, from));
    this.held = buf.subarray(from);
    return from;
  }
}

/** Scan a whole DATA section at once (tests): what the backend gets, with the terminator. */
export function relayedData(wire: Buffer): { data: Buffer; scanner: DataScanner; rest?: Buffer } {
  const s = new DataScanner();
  const step = s.push(wire);
  if (!s.ended) throw new Error('no end of data in the input');
  return { data: Buffer.concat([step.out, Buffer.from('.\r\n')]), scanner: s, rest: step.rest };
}
