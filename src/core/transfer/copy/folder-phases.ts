/**
 * The phases of copying one folder other than the copy itself (copy-new.ts), in the order
 * folder-copy.ts runs them. Each takes what it needs and can be run (and tested) alone.
 */
import type { Checkpoint } from './checkpoint.js';
import { flagKey, flagPolicy, type FlagPolicy } from './flags.js';
import type { FolderStats, FolderTarget } from './folder-result.js';
import type { ImapSession } from './imap-session.js';
import type { SourceDelta } from './incremental.js';
import { openMailbox, type MailboxInfo } from './mailbox.js';
import type { MatchedFlags } from './copy-new.js';
import type { FolderOutcomes, LedgerFolder } from './outcomes.js';
import type { AccountLedger } from './ledger.js';
import {
  expungeOnDestination,
  reconcileHeads,
  reconcileLost,
  removeSurplus,
  scanAboveWatermark,
  type LostPolicy,
} from './reconcile.js';
import type { CopyTuning } from './tuning.js';
import { compressSet } from './wire.js';

export interface OpenFolders {
  sbox: MailboxInfo;
  dbox: MailboxInfo;
  /** which flags the destination folder keeps */
  policy: FlagPolicy;
}

/**
 * EXAMINE the source (with QRESYNC when the checkpoint holds a modseq to resync from, RFC
 * 7162 3.2.5; else with CONDSTORE when offered) and SELECT the destination.
 */
export async function openFolders(
  src: ImapSession,
  dst: ImapSession,
  target: FolderTarget,
  cp: Checkpoint,
  tuning: CopyTuning,
): Promise<OpenFolders> {
  const st = cp.state;
  const qresync =
    src.enabled.has('QRESYNC') && tuning.incremental === 'auto' && st.modseq && st.srcUv
      ? { uidValidity: st.srcUv, modseq: st.modseq }
      : undefined;
  const sbox = await openMailbox(src, target.source, {
    readOnly: true,
    condstore: src.has('CONDSTORE') && !qresync,
    qresync,
  });
  const dbox = await openMailbox(dst, target.destination, { readOnly: false });
  return { sbox, dbox, policy: flagPolicy(dbox.permanentFlags) };
}

/**
 * Bring the checkpoint in line with both servers (reconcile.ts), then set the watermark
 * (checkpoint.ts step 1): durable before the first APPEND, it is what makes a crash after an
 * APPEND recoverable.
 */
export async function prepareCheckpoint(
  dst: ImapSession,
  cp: Checkpoint,
  boxes: OpenFolders,
  opts: { tuning: CopyTuning; lost: LostPolicy; ledger: AccountLedger; base: LedgerFolder },
  stats: FolderStats,
): Promise<void> {
  reconcileHeads(cp, boxes.sbox, boxes.dbox);
  stats.restored += await scanAboveWatermark(dst, cp, opts.tuning);
  const lost = await reconcileLost(dst, cp, boxes.dbox, opts.lost, opts.ledger, opts.base);
  stats.restored += lost.restored;
  stats.keptDeleted += lost.deleted;
  cp.setWatermark(boxes.dbox.uidNext);
}

/**
 * Remove our copies of what the source expunged: only ours, by UID (UIDPLUS's UID EXPUNGE,
 * RFC 4315 2.1). Without UIDPLUS nothing is removed, and the messages stay mapped.
 */
export async function removeExpunged(
  dst: ImapSession,
  cp: Checkpoint,
  outcomes: FolderOutcomes,
  expunged: readonly number[],
): Promise<void> {
  if (expunged.length === 0) return;
  const destUids = expunged.map((s) => cp.state.map.get(s)?.d ?? 0).filter((d) => d > 0);
  if (!(await expungeOnDestination(dst, destUids))) return;
  for (const s of expunged) outcomes.expunged(s);
}

/** Mapped source UIDs grouped by the flag set (flagKey) their copies should get. */
export function groupByFlags(
  cp: Checkpoint,
  flagChanges: SourceDelta['flagChanges'],
): Map<string, number[]> {
  const groups = new Map<string, number[]>();
  for (const [s, kept] of flagChanges) {
    if (!cp.state.map.get(s)?.d) continue;
    const key = flagKey(kept);
    groups.set(key, [...(groups.get(key) ?? []), s]);
  }
  return groups;
}

/** Flag changes on the source: one UID STORE per distinct resulting flag set. */
export async function applyFlagChanges(
  dst: ImapSession,
  cp: Checkpoint,
  outcomes: FolderOutcomes,
  flagChanges: SourceDelta['flagChanges'],
): Promise<void> {
  if (flagChanges.size === 0) return;
  for (const [key, sUids] of groupByFlags(cp, flagChanges)) {
    const dUids = sUids.map((s) => cp.state.map.get(s)?.d ?? 0);
    await dst.ok(`UID STORE ${compressSet(dUids)} FLAGS.SILENT (${key})`);
    for (const s of sUids) outcomes.flagsSet(s, key);
  }
  cp.commit();
}

/** Matched messages carry whatever flags the interrupted run gave them: set them now. */
export async function setMatchedFlags(
  dst: ImapSession,
  cp: Checkpoint,
  matched: readonly MatchedFlags[],
): Promise<void> {
  for (const { s, flags } of matched) {
    const d = cp.state.map.get(s)?.d;
    if (!d) continue;
    const key = flagKey(flags);
    await dst.ok(`UID STORE ${d} FLAGS.SILENT (${key})`);
    cp.flagsWritten(s, key);
  }
}

/**
 * Look above the watermark once more: copies whose UID the destination did not tell (no
 * UIDPLUS) are bound by hash, and an APPEND that a killed earlier run had already sent can
 * land while this run works (the server finishes commands it read before it saw the
 * disconnect); it shows up here as an orphan. Then our copies left over from a source
 * UIDVALIDITY change or a killed run go; orphans that are someone else's mail stay,
 * counted as extra.
 */
export async function settleDestination(
  dst: ImapSession,
  cp: Checkpoint,
  tuning: CopyTuning,
  stats: FolderStats,
): Promise<void> {
  await scanAboveWatermark(dst, cp, tuning);
  const removed = await removeSurplus(dst, cp);
  stats.expunged += removed.expunged;
  stats.extra += removed.extra;
}
