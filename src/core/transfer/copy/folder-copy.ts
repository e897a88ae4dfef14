/**
 * Copy one folder: reconcile the checkpoint with both servers, then remove what the source
 * expunged, apply flag changes, and copy what is new or lost on the destination. Running it
 * again after any interruption is always safe (see checkpoint.ts for why nothing is doubled
 * or lost, and reconcileLost in reconcile.ts for when a copy lost on the destination is made
 * again).
 *
 * The phases, in order (folder-phases.ts and copy-new.ts hold one function each):
 *  1. open both folders;
 *  2. reconcile the checkpoint with them and set the watermark;
 *  3. list what changed on the source since the checkpoint (incremental.ts);
 *  4. remove our copies of what the source expunged;
 *  5. apply flag changes;
 *  6. copy the new messages (skip, match by hash, or append);
 *  7. set the flags of the matched ones;
 *  8. settle the destination: bind or remove what landed above the watermark;
 *  9. record how far this run got, and report.
 */
import type { Checkpoint } from './checkpoint.js';
import { copyNewMessages } from './copy-new.js';
import {
  applyFlagChanges,
  openFolders,
  prepareCheckpoint,
  removeExpunged,
  setMatchedFlags,
  settleDestination,
  type OpenFolders,
} from './folder-phases.js';
import {
  newFolderStats,
  type FolderCopyResult,
  type FolderProgressEvent,
  type FolderStats,
  type FolderTarget,
} from './folder-result.js';
import type { ImapSession } from './imap-session.js';
import { deltaMode, sourceDelta, type DeltaMode, type SourceDelta } from './incremental.js';
import type { AccountLedger } from './ledger.js';
import { FolderOutcomes } from './outcomes.js';
import type { LostPolicy } from './reconcile.js';
import type { CopyTuning } from './tuning.js';

export { DEFAULT_TUNING, type CopyTuning } from './tuning.js';
export {
  newFolderStats,
  type CopyCounters,
  type FolderCopyResult,
  type FolderProgressEvent,
  type FolderStats,
  type FolderTarget,
} from './folder-result.js';

export interface FolderCopyDeps {
  src: ImapSession;
  dst: ImapSession;
  checkpoint: Checkpoint;
  ledger: AccountLedger;
  tuning: CopyTuning;
  /** the destination's APPENDLIMIT (RFC 7889), when it announced one */
  appendLimit?: number;
  onProgress?: (e: FolderProgressEvent) => void;
  signal?: AbortSignal;
  /** counters to continue (the same folder's earlier attempt in this run) */
  stats?: FolderStats;
  /** copies missing on the destination: made again or left deleted (default 'restore') */
  lost?: LostPolicy;
  /**
   * A late-mail sweep after the switch (transfer/sweep.ts): only source UIDs above the
   * checkpoint's are copied; no flag change or expunge is applied, the destination is the
   * user's now.
   */
  newOnly?: boolean;
}

export async function copyFolder(
  target: FolderTarget,
  deps: FolderCopyDeps,
): Promise<FolderCopyResult> {
  const { src, dst, checkpoint: cp, ledger, tuning } = deps;
  const boxes = await openFolders(src, dst, target, cp, tuning);
  const since = deps.newOnly ? sweepWatermark(target, cp, boxes) : undefined;
  const stats = deps.stats ?? newFolderStats();
  const base = { folder: target.source, uidValidity: boxes.sbox.uidValidity };
  await prepareCheckpoint(
    dst,
    cp,
    boxes,
    { tuning, lost: deps.lost ?? 'restore', ledger, base },
    stats,
  );
  const mode = deltaMode(src, cp.state, boxes.sbox, tuning);
  const delta = onlyAbove(await sourceDelta(src, boxes.sbox, cp.state, boxes.policy, mode), since);
  const outcomes = new FolderOutcomes(cp, ledger, stats, base);
  await removeExpunged(dst, cp, outcomes, delta.expunged);
  await applyFlagChanges(dst, cp, outcomes, delta.flagChanges);

  const progress = (phase: FolderProgressEvent['phase']): void =>
    deps.onProgress?.(progressEvent(target, delta, stats, phase));
  progress('scan');
  const matched = await copyNewMessages(
    {
      src,
      dst,
      destination: target.destination,
      cp,
      outcomes,
      policy: boxes.policy,
      tuning,
      appendLimit: deps.appendLimit,
      signal: deps.signal,
      onProgress: () => progress('copy'),
    },
    delta.toCopy,
  );
  await setMatchedFlags(dst, cp, matched);
  await settleDestination(dst, cp, tuning, stats);

  // the modseq only counts when everything up to lastUid is on the destination
  const complete = stats.failed === 0 && boxes.sbox.highestModseq;
  cp.setProgress(delta.lastUid, complete ? boxes.sbox.highestModseq : undefined);
  cp.commit();
  progress('done');
  return folderResult(target, boxes, mode, delta, cp, stats);
}

/**
 * The UID above which a sweep copies: the checkpoint's, unless the source folder was
 * recreated since (new UIDVALIDITY): its UIDs no longer compare, so the sweep leaves it.
 */
function sweepWatermark(target: FolderTarget, cp: Checkpoint, boxes: OpenFolders): number {
  const st = cp.state;
  if (st.srcUv !== 0 && st.srcUv !== boxes.sbox.uidValidity)
    throw new Error(
      `${target.source} was recreated on the source since the switch (new UIDVALIDITY); the late-mail sweep leaves it`,
    );
  return st.lastUid;
}

/** A sweep's delta: the new messages only, nothing taken back from the destination. */
function onlyAbove(delta: SourceDelta, since: number | undefined): SourceDelta {
  if (since === undefined) return delta;
  return {
    ...delta,
    toCopy: delta.toCopy.filter((uid) => uid > since),
    flagChanges: new Map(),
    expunged: [],
  };
}

function progressEvent(
  target: FolderTarget,
  delta: SourceDelta,
  stats: FolderStats,
  phase: FolderProgressEvent['phase'],
): FolderProgressEvent {
  return {
    folder: target.source,
    phase,
    toCopy: delta.toCopy.length,
    toCopyBytes: delta.listedBytes,
    copied: stats.copied + stats.matched,
    copiedBytes: stats.copiedBytes,
    skipped: stats.skipped,
    failed: stats.failed,
  };
}

/** The folder's result, from the counters and what the checkpoint maps now. */
export function folderResult(
  target: FolderTarget,
  boxes: OpenFolders,
  mode: DeltaMode,
  delta: Pick<SourceDelta, 'lastUid'>,
  cp: Checkpoint,
  stats: FolderStats,
): FolderCopyResult {
  let bytes = 0;
  for (const e of cp.state.map.values()) bytes += e.z;
  const { dropped: _dropped, ...counters } = stats;
  return {
    source: target.source,
    destination: target.destination,
    mode,
    uidValidity: boxes.sbox.uidValidity,
    destUidValidity: boxes.dbox.uidValidity,
    highestModseq: boxes.sbox.highestModseq,
    lastUid: delta.lastUid,
    messages: boxes.sbox.exists,
    bytes,
    ...counters,
    droppedFlags: [...stats.dropped].sort(),
    policy: boxes.policy,
  };
}
