/**
 * The gateway's UIDL rewriting for a moved account's POP3 session: the destination's
 * replies to `UIDL` (RFC 1939 7, both forms) are shown with the source's UIDLs from the
 * continuity map; every other byte passes as it came. The filter watches the commands the
 * client sends, to know which reply is which: one reply per command, in order, also when
 * the client pipelines (RFC 2449 6.6); a reply is multi-line when it is "+OK" to CAPA,
 * RETR, TOP, or LIST/UIDL without an argument (RFC 1939 3), and ends with a line holding
 * only "." (byte-stuffed bodies never have one).
 *
 * Memory is bounded whatever the servers send: one reply line at most is held (UIDL lines
 * are short, RFC 1939 7: 1-70 characters), message bodies are scanned in place, a UIDL
 * listing streams line by line. Input it cannot follow (an overlong line, too many
 * commands in flight) turns the rewriting off for the rest of the session: the client then
 * sees the destination's own UIDLs, never a mangled reply.
 */

type Kind = 'single' | 'multi' | 'uidl-list' | 'uidl-one';
type Phase = 'status' | 'body' | 'uidl-body';

export interface RewriteLimits {
  /** longest reply line held for rewriting */
  maxLine: number;
  /** commands awaiting their reply */
  maxPending: number;
}

export const DEFAULT_REWRITE_LIMITS: RewriteLimits = { maxLine: 1024, maxPending: 4096 };

const LF = 0x0a;
const DOT = 0x2e;
const CR = 0x0d;
/** of a command line, enough to know its verb and whether it has an argument */
const COMMAND_HEAD = 64;

export class UidlRewriter {
  /** counts for the log: UIDLs shown as the source's */
  rewritten = 0;
  /** set when the input could not be followed; everything passes from then on */
  off = false;
  private readonly pending: Kind[] = [];
  private command: Buffer[] = [];
  private commandBytes = 0;
  private phase: Phase = 'status';
  private atReplyStart = true;
  private ok = false;
  private lineStart = true;
  private dot = 0;
  /** the reply line being held for rewriting */
  private held: Buffer[] = [];
  private heldBytes = 0;
  /** the held line grew past maxLine: pass the rest of it unchanged */
  private passLine = false;

  constructor(
    private readonly map: ReadonlyMap<string, string>,
    private readonly limits: RewriteLimits = DEFAULT_REWRITE_LIMITS,
  ) {}

  /** Bytes the client sends to the backend (observed, never changed). */
  fromClient(chunk: Buffer): void {
    if (this.off) return;
    let pos = 0;
    while (pos < chunk.length) {
      const nl = chunk.indexOf(LF, pos);
      const end = nl < 0 ? chunk.length : nl;
      if (this.commandBytes < COMMAND_HEAD) {
        const part = chunk.subarray(pos, Math.min(end, pos + COMMAND_HEAD - this.commandBytes));
        this.command.push(Buffer.from(part));
        this.commandBytes += part.length;
      }
      if (nl < 0) return;
      pos = nl + 1;
      const line = Buffer.concat(this.command).toString('latin1');
      this.command = [];
      this.commandBytes = 0;
      this.pending.push(classify(line));
      if (this.pending.length > this.limits.maxPending) return this.stop();
    }
  }

  /**
   * Bytes the backend sends to the client: what to send instead. The same Buffer when
   * nothing was changed or held (a byte copy); otherwise a new one, and `chunk` may be
   * reused by the caller at once.
   */
  fromBackend(chunk: Buffer): Buffer {
    if (this.off) return chunk;
    const out: Buffer[] = [];
    let pos = 0;
    let from = 0;
    let changed = false;
    const flushUpTo = (to: number): void => {
      if (to > from) out.push(chunk.subarray(from, to));
      from = to;
    };
    while (pos < chunk.length && !this.off) {
      const kind = this.pending[0];
      if (kind === undefined) break;
      const holds = (this.phase === 'status' && kind === 'uidl-one') || this.phase === 'uidl-body';
      if (!holds) {
        pos = this.phase === 'body' ? this.scanBody(chunk, pos) : this.scanStatus(chunk, pos, kind);
        continue;
      }
      // a line to rewrite: hold it until its LF
      flushUpTo(pos);
      changed = true;
      const nl = chunk.indexOf(LF, pos);
      const end = nl < 0 ? chunk.length : nl + 1;
      this.hold(chunk.subarray(pos, end), out);
      pos = from = end;
      if (nl >= 0) this.lineDone(out, kind);
    }
    if (!changed) return chunk;
    flushUpTo(chunk.length);
    return Buffer.concat(out);
  }

  private stop(): void {
    this.off = true;
    this.pending.length = 0;
    this.command = [];
  }

  private next(): void {
    this.pending.shift();
    this.phase = 'status';
    this.atReplyStart = true;
  }

  /** a status line passed unchanged; returns where the scan stopped */
  private scanStatus(chunk: Buffer, pos: number, kind: Kind): number {
    if (this.atReplyStart) {
      this.ok = chunk[pos] === 0x2b;
      this.atReplyStart = false;
    }
    const nl = chunk.indexOf(LF, pos);
    if (nl < 0) return chunk.length;
    if (this.ok && kind === 'multi') {
      this.phase = 'body';
      this.lineStart = true;
      this.dot = 0;
    } else if (this.ok && kind === 'uidl-list') this.phase = 'uidl-body';
    else this.next();
    return nl + 1;
  }

  /** a multi-line body passed unchanged, looking for its "." line */
  private scanBody(chunk: Buffer, start: number): number {
    let pos = start;
    while (pos < chunk.length) {
      if (!this.lineStart) {
        const nl = chunk.indexOf(LF, pos);
        if (nl < 0) return chunk.length;
        pos = nl + 1;
        this.lineStart = true;
        this.dot = 0;
        continue;
      }
      const b = chunk[pos];
      if (this.dot === 0 && b === DOT) this.dot = 1;
      else if (this.dot === 1 && b === CR) this.dot = 2;
      else if (this.dot > 0 && b === LF) {
        this.next();
        return pos + 1;
      } else {
        this.lineStart = false;
        continue;
      }
      pos++;
    }
    return pos;
  }

  private hold(part: Buffer, out: Buffer[]): void {
    if (this.passLine) return void out.push(Buffer.from(part));
    this.held.push(Buffer.from(part));
    this.heldBytes += part.length;
    if (this.heldBytes > this.limits.maxLine) {
      // not a UIDL line any server sends: give it back as it came, and stop rewriting
      out.push(...this.held);
      this.held = [];
      this.heldBytes = 0;
      this.passLine = true;
    }
  }

  private lineDone(out: Buffer[], kind: Kind): void {
    if (this.passLine) {
      this.passLine = false;
      return this.stop();
    }
    const line = Buffer.concat(this.held).toString('latin1');
    this.held = [];
    this.heldBytes = 0;
    if (this.phase === 'status') {
      this.next();
      if (!line.startsWith('+OK ')) return void out.push(Buffer.from(line, 'latin1'));
      return void out.push(Buffer.from(`+OK ${this.rewrite(line.slice(4))}`, 'latin1'));
    }
    if (line === '.\r\n' || line === '.\n') this.next();
    else if (kind === 'uidl-list') return void out.push(Buffer.from(this.rewrite(line), 'latin1'));
    out.push(Buffer.from(line, 'latin1'));
  }

  /** "n uidl<eol>" with the source's UIDL when the map has one */
  private rewrite(entry: string): string {
    const m = /^(\d+ +)(\S+)(\s*)$/.exec(entry);
    if (!m) return entry;
    const source = this.map.get(m[2] as string);
    if (source === undefined) return entry;
    this.rewritten++;
    return `${m[1]}${source}${m[3]}`;
  }
}

function classify(line: string): Kind {
  const words = line.trim().split(/\s+/);
  const verb = (words[0] ?? '').toUpperCase();
  const arg = words.length > 1;
  switch (verb) {
    case 'UIDL':
      return arg ? 'uidl-one' : 'uidl-list';
    case 'LIST':
      return arg ? 'single' : 'multi';
    case 'RETR':
    case 'TOP':
    case 'CAPA':
      return 'multi';
    default:
      return 'single';
  }
}
