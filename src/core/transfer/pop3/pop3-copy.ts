/**
 * POP3 fallback: copy a source inbox that is only reachable over POP3 into the
 * destination's INBOX over IMAP.
 *
 * - The source is never changed: no DELE is ever sent, the session ends with QUIT.
 * - Bytes are copied exactly as RETR delivered them (byte-stuffing undone, nothing
 *   added), with INTERNALDATE from the top-most Received: date (received-date.ts).
 * - Every message is identified by its source UIDL (RFC 1939 7); `onCopied` records
 *   UIDL -> destination UID (APPENDUID, RFC 4315) with the SHA-256 and size, and a
 *   later run skips the UIDLs passed in `copied`.
 * - A crash between APPEND and `onCopied` must not double the message: before
 *   appending, destination messages not yet recorded are matched by size and then
 *   SHA-256, and a match is recorded instead of appended again.
 */
import { createHash } from 'node:crypto';
import type { ImapFlow } from 'imapflow';
import { internalDateOf, type DateSource } from './received-date.js';
import { Pop3Client, Pop3Error, type Pop3ConnectOptions } from './pop3-client.js';

export interface Pop3CopyOptions {
  /** how to reach the source (or a factory, for tests and pooled connections) */
  source: Pop3ConnectOptions | (() => Promise<Pop3Client>);
  /** a logged-in IMAP client of the destination */
  destination: ImapFlow;
  /** default "INBOX" */
  mailbox?: string;
  /** UIDLs already copied by an earlier run */
  copied?: ReadonlySet<string>;
  /** destination UIDs the state already accounts for; they are never matched again */
  recordedDestUids?: ReadonlySet<number>;
  /** flags for the appended messages (POP3 has none; default none, i.e. unread) */
  flags?: string[];
  onCopied(
    uidl: string,
    destUid: number | undefined,
    sha256: string,
    size: number,
    info: Pop3CopiedInfo,
  ): void | Promise<void>;
  /** the destination refused one message (or its UIDL is not unique); the copy goes on */
  onFailed?(uidl: string, reason: string, n: number): void | Promise<void>;
  now?: () => Date;
}

/** What `onCopied` learns besides the bytes' identity, for the ledger and the verify. */
export interface Pop3CopiedInfo {
  /** the message's number in this POP3 session (RFC 1939 LIST/RETR) */
  n: number;
  /** found on the destination (an earlier run appended it) instead of appended now */
  matched: boolean;
  /** the INTERNALDATE it was appended with (when matched: the one it would have had) */
  date: Date;
  dateFrom: DateSource;
}

export interface Pop3CopyResult {
  /** messages in the source inbox */
  total: number;
  /** appended by this run: UIDL -> destination UID (undefined without UIDPLUS) */
  copied: Map<string, number | undefined>;
  /** found on the destination already (an earlier run crashed before recording them) */
  matched: Map<string, number>;
  /** skipped because `copied` had them */
  skipped: number;
  failed: Array<{ uidl: string; reason: string }>;
  bytes: number;
  /** where each appended message's INTERNALDATE came from */
  dates: Map<string, DateSource>;
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Destination messages not yet in the state, by size; hashes fetched only on demand. */
class DestinationMatcher {
  private bySize = new Map<number, number[]>();
  private hashes = new Map<number, string>();

  constructor(
    private readonly client: ImapFlow,
    private readonly mailbox: string,
  ) {}

  async load(recorded: ReadonlySet<number>): Promise<void> {
    const lock = await this.client.getMailboxLock(this.mailbox, { readOnly: true });
    try {
      if (!this.client.mailbox || this.client.mailbox.exists === 0) return;
      for await (const msg of this.client.fetch('1:*', { uid: true, size: true })) {
        if (recorded.has(msg.uid) || msg.size === undefined) continue;
        const list = this.bySize.get(msg.size) ?? [];
        list.push(msg.uid);
        this.bySize.set(msg.size, list);
      }
    } finally {
      lock.release();
    }
  }

  /** A destination UID holding exactly these bytes, consumed so it matches once. */
  async take(size: number, hash: string): Promise<number | undefined> {
    const uids = this.bySize.get(size);
    if (!uids?.length) return undefined;
    const lock = await this.client.getMailboxLock(this.mailbox, { readOnly: true });
    try {
      for (const uid of uids) {
        let h = this.hashes.get(uid);
        if (h === undefined) {
          const msg = await this.client.fetchOne(String(uid), { source: true }, { uid: true });
          if (!msg || !msg.source) continue;
          h = sha256(msg.source);
          this.hashes.set(uid, h);
        }
        if (h === hash) {
          uids.splice(uids.indexOf(uid), 1);
          return uid;
        }
      }
    } finally {
      lock.release();
    }
    return undefined;
  }
}

function isRefusal(err: unknown): boolean {
  // A tagged NO/BAD to APPEND, or imapflow's own APPENDLIMIT check (RFC 7889), is about
  // this message; anything else (connection lost, timeout) ends the run.
  const e = err as { responseStatus?: string; serverResponseCode?: string };
  return (
    e.responseStatus === 'NO' ||
    e.responseStatus === 'BAD' ||
    e.serverResponseCode === 'APPENDLIMIT'
  );
}

export async function pop3Copy(opts: Pop3CopyOptions): Promise<Pop3CopyResult> {
  const mailbox = opts.mailbox ?? 'INBOX';
  const copiedBefore = opts.copied ?? new Set<string>();
  const now = opts.now ?? (() => new Date());
  const res: Pop3CopyResult = {
    total: 0,
    copied: new Map(),
    matched: new Map(),
    skipped: 0,
    failed: [],
    bytes: 0,
    dates: new Map(),
  };
  const pop =
    typeof opts.source === 'function' ? await opts.source() : await Pop3Client.connect(opts.source);
  try {
    let uidls: Map<number, string>;
    try {
      uidls = await pop.uidl();
    } catch (err) {
      if (err instanceof Pop3Error && err.response !== undefined) {
        throw new Pop3Error(
          `the source POP3 server does not support UIDL (${err.response}); without it a copy cannot be resumed or kept free of duplicates`,
          err.response,
        );
      }
      throw err;
    }
    res.total = uidls.size;
    const seen = new Set<string>();
    const todo: Array<[number, string]> = [];
    for (const [n, uidl] of [...uidls].sort((a, b) => a[0] - b[0])) {
      if (seen.has(uidl)) {
        const reason = `UIDL "${uidl}" is used by more than one message on the source; copied once`;
        res.failed.push({ uidl, reason });
        await opts.onFailed?.(uidl, reason, n);
        continue;
      }
      seen.add(uidl);
      if (copiedBefore.has(uidl)) res.skipped++;
      else todo.push([n, uidl]);
    }
    if (todo.length === 0) return res;

    const matcher = new DestinationMatcher(opts.destination, mailbox);
    await matcher.load(opts.recordedDestUids ?? new Set());

    for (const [n, uidl] of todo) {
      const bytes = await pop.retr(n);
      const hash = sha256(bytes);
      const { date, from } = internalDateOf(bytes, now());
      const again = await matcher.take(bytes.length, hash);
      if (again !== undefined) {
        res.matched.set(uidl, again);
        await opts.onCopied(uidl, again, hash, bytes.length, {
          n,
          matched: true,
          date,
          dateFrom: from,
        });
        continue;
      }
      let uid: number | undefined;
      try {
        const r = await opts.destination.append(mailbox, bytes, opts.flags ?? [], date);
        if (!r)
          throw new Error(`APPEND to ${mailbox} was not sent (destination connection not usable)`);
        uid = r.uid;
      } catch (err) {
        if (!isRefusal(err)) throw err;
        const reason = (err as { responseText?: string }).responseText || (err as Error).message;
        res.failed.push({ uidl, reason });
        await opts.onFailed?.(uidl, reason, n);
        continue;
      }
      res.copied.set(uidl, uid);
      res.dates.set(uidl, from);
      res.bytes += bytes.length;
      await opts.onCopied(uidl, uid, hash, bytes.length, {
        n,
        matched: false,
        date,
        dateFrom: from,
      });
    }
    return res;
  } finally {
    await pop.quit().catch(() => pop.close());
  }
}
