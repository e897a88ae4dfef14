/**
 * Pipelined APPEND into one destination folder.
 *
 * Several APPEND commands are in flight at once: with LITERAL+ (RFC 7888) a command and its
 * message go out without waiting for a continuation, so the connection is never idle for a
 * round trip. With MULTIAPPEND (RFC 3502) several messages share one command, which lets a
 * server such as Dovecot save them in one transaction. RFC 3502 makes a MULTIAPPEND
 * all-or-nothing: when one is refused, the batch is sent again one message per command so
 * that only the refused message fails, with the server's own text, and the rest is copied.
 *
 * The flags and INTERNALDATE go with each message (RFC 3501 6.3.11); the destination UIDs come
 * back in APPENDUID (RFC 4315). Results are reported in the order the server completes them.
 */
import { ImapError } from './errors.js';
import type { ImapSession } from './imap-session.js';
import type { CommandPart, Tagged } from './session-types.js';
import { mailboxArg } from './mailbox.js';
import { parseThrottle } from './throttle.js';
import { memoryOf } from './fetch-stream.js';
import type { Body } from './spill.js';
import { expandSet, quoted } from './wire.js';

export interface AppendItem {
  /** source UID, for the caller */
  uid: number;
  body: Body;
  /** flags already filtered to the destination's PERMANENTFLAGS */
  flags: string[];
  internalDate: string;
}

export type AppendResult =
  | { item: AppendItem; ok: true; destUid: number; uidValidity?: number }
  | { item: AppendItem; ok: false; reason: string; serverCode?: string };

export interface AppenderOptions {
  multiappend: boolean;
  /** messages per MULTIAPPEND command */
  maxBatchMessages: number;
  /** bytes per MULTIAPPEND command (a larger message goes alone) */
  maxBatchBytes: number;
  /** commands in flight */
  maxInFlight: number;
  /** message bytes held by commands in flight (memory bound) */
  maxInFlightBytes: number;
  onResult: (r: AppendResult) => void;
}

interface Batch {
  items: AppendItem[];
  bytes: number;
}

export class Appender {
  private batch: Batch = { items: [], bytes: 0 };
  private inFlight = 0;
  private inFlightBytes = 0;
  private failure: unknown = null;
  private waiters: (() => void)[] = [];
  private readonly settled = new Set<Promise<void>>();

  constructor(
    private readonly s: ImapSession,
    private readonly mailbox: string,
    private readonly opts: AppenderOptions,
  ) {}

  /** Queue one message; waits while too much is in flight. Throws when the connection failed. */
  async add(item: AppendItem): Promise<void> {
    this.check();
    const size = memoryOf(item.body);
    const limit = this.opts.multiappend ? this.opts.maxBatchMessages : 1;
    if (this.batch.items.length > 0 && this.batch.bytes + size > this.opts.maxBatchBytes)
      await this.send();
    this.batch.items.push(item);
    this.batch.bytes += size;
    if (this.batch.items.length >= limit || this.batch.bytes >= this.opts.maxBatchBytes)
      await this.send();
  }

  /** Send what is queued and wait for every command to complete. */
  async flush(): Promise<void> {
    if (this.batch.items.length) await this.send();
    while (this.settled.size) await Promise.all([...this.settled]);
    this.check();
  }

  private check(): void {
    if (this.failure) throw this.failure;
  }

  private async send(): Promise<void> {
    const batch = this.batch;
    this.batch = { items: [], bytes: 0 };
    while (
      this.inFlight > 0 &&
      (this.inFlight >= this.opts.maxInFlight ||
        this.inFlightBytes + batch.bytes > this.opts.maxInFlightBytes)
    ) {
      await new Promise<void>((r) => this.waiters.push(r));
      this.check();
    }
    this.inFlight++;
    this.inFlightBytes += batch.bytes;
    const p = this.run(batch)
      .catch((err: unknown) => {
        this.failure ??= err;
      })
      .finally(() => {
        this.inFlight--;
        this.inFlightBytes -= batch.bytes;
        this.settled.delete(p);
        const w = this.waiters.shift();
        w?.();
      });
    this.settled.add(p);
  }

  private async run(batch: Batch): Promise<void> {
    const t = await this.s.command(appendCommand(this.mailbox, batch.items));
    if (t.status === 'OK') {
      this.report(batch.items, t);
      return;
    }
    throwIfThrottled(this.s.label, t);
    if (batch.items.length > 1) {
      // all-or-nothing (RFC 3502 6.3.11): find the refused one by sending them singly
      const singles = batch.items.map((item) =>
        this.s.command(appendCommand(this.mailbox, [item])),
      );
      for (let i = 0; i < singles.length; i++) {
        const ti = await (singles[i] as Promise<Tagged>);
        const item = batch.items[i] as AppendItem;
        if (ti.status === 'OK') this.report([item], ti);
        else {
          throwIfThrottled(this.s.label, ti);
          this.opts.onResult({ item, ok: false, reason: refusal(ti), serverCode: ti.code?.name });
        }
      }
      return;
    }
    const item = batch.items[0] as AppendItem;
    this.opts.onResult({ item, ok: false, reason: refusal(t), serverCode: t.code?.name });
  }

  private report(items: AppendItem[], t: Tagged): void {
    let uids: number[] = [];
    let uidValidity: number | undefined;
    if (t.code?.name === 'APPENDUID') {
      const [uv, set] = t.code.args.split(' ');
      uidValidity = Number(uv);
      uids = expandSet(set ?? '');
    }
    // without UIDPLUS (or a count that does not match) the UIDs stay unknown (0) and are
    // found later by hash, like after a crash
    const known = uids.length === items.length;
    items.forEach((item, i) =>
      this.opts.onResult({ item, ok: true, destUid: known ? (uids[i] as number) : 0, uidValidity }),
    );
  }
}

function refusal(t: Tagged): string {
  return `${t.status}${t.code ? ` [${t.code.name}${t.code.args ? ` ${t.code.args}` : ''}]` : ''} ${t.text}`.trim();
}

function throwIfThrottled(label: string, t: Tagged): void {
  const th = parseThrottle(`${t.code ? `[${t.code.name}] ` : ''}${t.text}`);
  if (th)
    throw new ImapError('ETHROTTLE', `${label} is throttling: ${t.text}`, {
      serverText: t.text,
      delayMs: th.delayMs,
    });
}

export function appendCommand(mailbox: string, items: readonly AppendItem[]): CommandPart[] {
  const parts: CommandPart[] = ['APPEND ', ...mailboxArg(mailbox)];
  for (const item of items) {
    // sent exactly as received: date-day-fixed may start with a space (RFC 3501 9)
    const date = quoted(item.internalDate);
    parts.push(` (${item.flags.join(' ')})${date ? ` ${date}` : ''} `, { literal: item.body });
  }
  return parts;
}
