/**
 * The copy itself: stream the new messages from the source and, for each, skip it (too big
 * for the destination), bind it to a copy already there (by hash, checkpoint.ts step 3) or
 * append it. APPENDs are pipelined (append.ts); their results come back in the order the
 * server completes them and are committed to the checkpoint in batches.
 */
import { Appender, type AppendResult } from './append.js';
import type { Checkpoint, CheckpointState, PoolEntry } from './checkpoint.js';
import { fetchBodies, type SourceMessage } from './fetch-stream.js';
import { filterFlags, type FlagPolicy } from './flags.js';
import type { ImapSession } from './imap-session.js';
import type { FolderOutcomes } from './outcomes.js';
import { disposeBody } from './spill.js';
import type { CopyTuning } from './tuning.js';

/** Results between two checkpoint commits: bounds what a crash makes the next run re-hash. */
const COMMIT_EVERY = 256;

export interface NewMessagesRun {
  src: ImapSession;
  dst: ImapSession;
  /** the destination mailbox */
  destination: string;
  cp: Checkpoint;
  outcomes: FolderOutcomes;
  policy: FlagPolicy;
  tuning: CopyTuning;
  /** the destination's APPENDLIMIT (RFC 7889), when it announced one */
  appendLimit?: number;
  signal?: AbortSignal;
  /** after each message's outcome */
  onProgress: () => void;
}

/** A matched message and the flags its source has: set on the destination after the copy. */
export interface MatchedFlags {
  s: number;
  flags: string[];
}

export type Placement =
  { kind: 'skip'; reason: string } | { kind: 'match'; hit: PoolEntry } | { kind: 'append' };

/** What to do with one source message: a decision without I/O. */
export function placeMessage(
  msg: Pick<SourceMessage, 'sha256' | 'size'>,
  state: Pick<CheckpointState, 'findInPool'>,
  appendLimit: number | undefined,
): Placement {
  if (appendLimit !== undefined && msg.size > appendLimit)
    return {
      kind: 'skip',
      reason: `${msg.size} bytes is over the destination's APPENDLIMIT of ${appendLimit} bytes`,
    };
  const hit = state.findInPool(msg.sha256, msg.size);
  return hit ? { kind: 'match', hit } : { kind: 'append' };
}

/**
 * Copy the source UIDs in `toCopy`. Returns the matched messages, whose flags the caller
 * sets once the stream is done. Throws what broke the stream or an APPEND, after the
 * APPENDs in flight completed and what they confirmed was committed.
 */
export async function copyNewMessages(
  run: NewMessagesRun,
  toCopy: readonly number[],
): Promise<MatchedFlags[]> {
  const needFlags: MatchedFlags[] = [];
  const hashOf = new Map<number, string>();
  const appender = newAppender(run, hashOf);
  const seen = new Set<number>();
  let streamError: unknown = null;
  try {
    for await (const msg of fetchBodies(run.src, toCopy, {
      maxQueueBytes: run.tuning.maxQueueBytes,
    })) {
      if (run.signal?.aborted) throw run.signal.reason;
      seen.add(msg.uid);
      const kept = keptFlags(run, msg.flags);
      const placed = placeMessage(msg, run.cp.state, run.appendLimit);
      if (placed.kind === 'skip') {
        run.outcomes.notCopied(
          msg.uid,
          { outcome: 'skipped', reason: placed.reason },
          { size: msg.size, sha256: msg.sha256 },
        );
        disposeBody(msg.body);
        continue;
      }
      if (placed.kind === 'match') {
        run.outcomes.matched(msg.uid, placed.hit);
        needFlags.push({ s: msg.uid, flags: kept });
        disposeBody(msg.body);
        run.onProgress();
        continue;
      }
      hashOf.set(msg.uid, msg.sha256);
      await appender.add({
        uid: msg.uid,
        body: msg.body,
        flags: kept,
        internalDate: msg.internalDate,
      });
    }
  } catch (err) {
    streamError = err;
  }
  // Let the APPENDs in flight complete (or fail) before giving up: one still running on the
  // server after we moved on could land above the next run's watermark and be doubled.
  try {
    await appender.flush();
  } catch (err) {
    streamError ??= err;
  }
  // what the destination confirmed is a fact, whatever failed afterwards
  run.cp.commit();
  if (streamError) throw streamError;
  for (const uid of toCopy) {
    if (seen.has(uid)) continue;
    run.outcomes.notCopied(uid, {
      outcome: 'skipped',
      reason: 'expunged on the source during the copy',
    });
  }
  return needFlags;
}

/** The flags the destination keeps; the others are reported once per folder. */
function keptFlags(run: NewMessagesRun, flags: readonly string[]): string[] {
  const { kept, dropped } = filterFlags(flags, run.policy);
  for (const f of dropped) run.outcomes.stats.dropped.add(f);
  return kept;
}

function newAppender(run: NewMessagesRun, hashOf: Map<number, string>): Appender {
  let sinceCommit = 0;
  const onResult = (r: AppendResult): void => {
    const s = r.item.uid;
    const sha256 = hashOf.get(s);
    const size = r.item.body.length;
    if (r.ok) run.outcomes.copied(s, { destUid: r.destUid, sha256, size, flags: r.item.flags });
    else run.outcomes.notCopied(s, { outcome: 'failed', reason: r.reason }, { size, sha256 });
    hashOf.delete(s);
    disposeBody(r.item.body);
    if (++sinceCommit >= COMMIT_EVERY) {
      run.cp.commit();
      sinceCommit = 0;
    }
    run.onProgress();
  };
  const { tuning } = run;
  return new Appender(run.dst, run.destination, {
    multiappend: run.dst.has('MULTIAPPEND'),
    maxBatchMessages: tuning.maxBatchMessages,
    maxBatchBytes: tuning.maxBatchBytes,
    maxInFlight: tuning.maxInFlight,
    maxInFlightBytes: tuning.maxInFlightBytes,
    onResult,
  });
}
