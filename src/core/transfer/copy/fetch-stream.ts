/**
 * Stream message bodies out of the source with `UID FETCH ... BODY.PEEK[]` (PEEK: the
 * source's \Seen flag is never set, RFC 3501 6.4.5), bounded in memory.
 *
 * All FETCH commands for the folder are sent at once (pipelined); the server streams the
 * messages back, and the socket is paused while more than `maxQueueBytes` of received
 * messages wait for the destination, so memory stays bounded whatever the folder's size.
 * Each message is hashed (SHA-256) over exactly the literal received; its length, not the
 * RFC822.SIZE the server claims, is the message's size.
 */
import { createHash } from 'node:crypto';
import { ImapError } from './errors.js';
import type { ImapSession } from './imap-session.js';
import { parseFetch } from './mailbox.js';
import { disposeBody, type Body } from './spill.js';
import { compressSet } from './wire.js';

/** bytes a body holds in memory (a spilled one holds none) */
export function memoryOf(b: Body): number {
  return Buffer.isBuffer(b) ? b.length : 0;
}

export interface SourceMessage {
  uid: number;
  flags: string[];
  internalDate: string;
  /** in memory, or in a spill file for a large message: call disposeBody() when done */
  body: Body;
  sha256: string;
  size: number;
  /** RFC822.SIZE as the server reported it, when it differs from the bytes received */
  reportedSize?: number;
}

export interface FetchOptions {
  /** pause the source while this many bytes wait to be appended */
  maxQueueBytes: number;
  /** ... or this many messages (each costs objects besides its bytes); default 1000 */
  maxQueueMessages?: number;
  /** longest UID set per FETCH command (servers limit command lines; Dovecot: 64 KiB) */
  maxSetChars?: number;
}

export function sha256(body: Buffer): string {
  return createHash('sha256').update(body).digest('hex');
}

/** Split UIDs into sequence sets no longer than maxChars each. */
export function chunkUidSets(uids: readonly number[], maxChars: number): string[] {
  const sorted = [...uids].sort((a, b) => a - b);
  const sets: string[] = [];
  let start = 0;
  while (start < sorted.length) {
    // grow the chunk while its compressed set fits
    let end = Math.min(sorted.length, start + 1);
    let step = 256;
    while (end < sorted.length) {
      const next = Math.min(sorted.length, end + step);
      if (compressSet(sorted.slice(start, next)).length > maxChars) {
        if (step === 1) break;
        step = Math.max(1, step >> 2);
        continue;
      }
      end = next;
    }
    sets.push(compressSet(sorted.slice(start, end)));
    start = end;
  }
  return sets;
}

/**
 * Yield the requested messages as they arrive (in the server's order, normally ascending
 * UID). UIDs the server does not return (expunged meanwhile) are simply not yielded. A
 * failed connection first yields every message received completely, then throws.
 */
export async function* fetchBodies(
  s: ImapSession,
  uids: readonly number[],
  opts: FetchOptions,
): AsyncGenerator<SourceMessage> {
  if (uids.length === 0) return;
  const queue: SourceMessage[] = [];
  const maxCount = opts.maxQueueMessages ?? 1000;
  let queued = 0;
  let paused = false;
  let finished = false;
  let failure: unknown = null;
  let wake: (() => void) | null = null;
  const notify = (): void => {
    const w = wake;
    wake = null;
    w?.();
  };

  const onUntagged = (r: Parameters<typeof parseFetch>[0]): void => {
    const f = parseFetch(r);
    if (!f || !f.body || !f.uid) return; // unsolicited FLAGS update or similar
    const body = f.body;
    const msg: SourceMessage = {
      uid: f.uid,
      flags: f.flags ?? [],
      internalDate: f.internalDate ?? '',
      body,
      sha256: '',
      size: body.length,
    };
    if (f.size !== undefined && f.size !== body.length) msg.reportedSize = f.size;
    queue.push(msg);
    queued += memoryOf(body);
    if ((queued > opts.maxQueueBytes || queue.length > maxCount) && !paused) {
      paused = true;
      s.pause();
    }
    notify();
  };

  const sets = chunkUidSets(uids, opts.maxSetChars ?? 16_000);
  const commands = sets.map((set) =>
    s.ok(`UID FETCH ${set} (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])`, onUntagged),
  );
  Promise.all(commands).then(
    () => {
      finished = true;
      notify();
    },
    (err: unknown) => {
      failure = err;
      finished = true;
      notify();
    },
  );

  try {
    for (;;) {
      const msg = queue.shift();
      if (msg) {
        queued -= memoryOf(msg.body);
        if (paused && queued <= opts.maxQueueBytes / 2 && queue.length <= maxCount / 2) {
          paused = false;
          s.resume();
        }
        msg.sha256 = Buffer.isBuffer(msg.body) ? sha256(msg.body) : msg.body.sha256;
        if (!msg.internalDate) {
          throw new ImapError(
            'EPROTOCOL',
            `${s.label} returned UID ${msg.uid} without INTERNALDATE`,
          );
        }
        yield msg;
        continue;
      }
      if (finished) break;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
    if (failure) throw failure;
  } finally {
    if (paused) s.resume();
    // messages the consumer never took (it stopped early or we failed)
    for (const m of queue) disposeBody(m.body);
  }
}
