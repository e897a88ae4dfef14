/**
 * Copy one folder: reconcile the checkpoint with both servers, then remove what the source
 * expunged, apply flag changes, and copy what is new or lost on the destination. Running it
 * again after any interruption is always safe (see checkpoint.ts for why nothing is doubled
 * or lost, and reconcileLost in reconcile.ts for when a copy lost on the destination is made
 * again).
 */
import { Appender, type AppendResult } from './append.js';
import type { Checkpoint } from './checkpoint.js';
import { fetchBodies } from './fetch-stream.js';
import { filterFlags, flagKey, flagPolicy, type FlagPolicy } from './flags.js';
import type { ImapSession } from './imap-session.js';
import { disposeBody } from './spill.js';
import { deltaMode, sourceDelta, type DeltaMode } from './incremental.js';
import type { AccountLedger } from './ledger.js';
import { openMailbox } from './mailbox.js';
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

export { DEFAULT_TUNING, type CopyTuning } from './tuning.js';

export interface FolderTarget {
  source: string;
  destination: string;
}

export interface FolderProgressEvent {
  folder: string;
  phase: 'scan' | 'copy' | 'done';
  toCopy: number;
  toCopyBytes: number;
  copied: number;
  copiedBytes: number;
  skipped: number;
  failed: number;
}

/** Counters of one folder's copy, carried across the attempts of one run (retries). */
export interface FolderStats {
  copied: number;
  copiedBytes: number;
  matched: number;
  skipped: number;
  failed: number;
  flagsUpdated: number;
  expunged: number;
  /** destination messages found above the watermark that match no source message */
  extra: number;
  /** copies found missing on the destination and queued to be made again */
  restored: number;
  /** copies found missing on the destination and recorded as the user's deletion */
  keptDeleted: number;
  dropped: Set<string>;
  /** destination UIDs written this run (verify hashes these) */
  written: number[];
  /** source UIDs skipped or failed this run, with why */
  notCopied: Map<number, { outcome: 'skipped' | 'failed'; reason: string }>;
}

export function newFolderStats(): FolderStats {
  return {
    copied: 0,
    copiedBytes: 0,
    matched: 0,
    skipped: 0,
    failed: 0,
    flagsUpdated: 0,
    expunged: 0,
    extra: 0,
    restored: 0,
    keptDeleted: 0,
    dropped: new Set(),
    written: [],
    notCopied: new Map(),
  };
}

/** What one run did to one folder; summed per account in result.ts. */
export interface CopyCounters {
  /** messages on the source */
  messages: number;
  /** bytes of the messages mapped after this run */
  bytes: number;
  copied: number;
  copiedBytes: number;
  matched: number;
  skipped: number;
  failed: number;
  flagsUpdated: number;
  expunged: number;
}

export interface FolderCopyResult extends CopyCounters {
  source: string;
  destination: string;
  mode: DeltaMode;
  uidValidity: number;
  destUidValidity: number;
  highestModseq?: string;
  lastUid: number;
  extra: number;
  restored: number;
  keptDeleted: number;
  droppedFlags: string[];
  written: number[];
  notCopied: Map<number, { outcome: 'skipped' | 'failed'; reason: string }>;
  policy: FlagPolicy;
}

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
}

const COMMIT_EVERY = 256;

export async function copyFolder(
  target: FolderTarget,
  deps: FolderCopyDeps,
): Promise<FolderCopyResult> {
  const { src, dst, checkpoint: cp, ledger, tuning } = deps;
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
  const policy = flagPolicy(dbox.permanentFlags);
  const stats = deps.stats ?? newFolderStats();
  const base = { folder: target.source, uidValidity: sbox.uidValidity };
  reconcileHeads(cp, sbox, dbox);
  stats.restored += await scanAboveWatermark(dst, cp, tuning);
  const lost = await reconcileLost(dst, cp, dbox, deps.lost ?? 'restore', ledger, base);
  stats.restored += lost.restored;
  stats.keptDeleted += lost.deleted;
  cp.record({ t: 'wm', uid: dbox.uidNext });
  // durable before the first APPEND: it is what makes a crash after an APPEND recoverable
  cp.commit();

  const mode = deltaMode(src, st, sbox, tuning);
  const delta = await sourceDelta(src, sbox, st, policy, mode);
  const notCopied = (uid: number, outcome: 'skipped' | 'failed', reason: string): void => {
    const before = stats.notCopied.get(uid);
    if (before) stats[before.outcome]--;
    stats[outcome]++;
    stats.notCopied.set(uid, { outcome, reason });
  };

  // 1. expunged on the source: remove our copies (only ours, by UID: UIDPLUS's UID EXPUNGE)
  if (delta.expunged.length) {
    const destUids = delta.expunged.map((s) => st.map.get(s)?.d ?? 0).filter((d) => d > 0);
    if (await expungeOnDestination(dst, destUids)) {
      for (const s of delta.expunged) {
        ledger.record({ ...base, uid: s, outcome: 'expunged', destUid: st.map.get(s)?.d });
        cp.record({ t: 'x', s });
        stats.expunged++;
      }
    }
  }

  // 2. flag changes, grouped by the resulting flag set: one UID STORE per distinct set
  if (delta.flagChanges.size) {
    const groups = new Map<string, number[]>();
    for (const [s, kept] of delta.flagChanges) {
      const d = st.map.get(s)?.d;
      if (!d) continue;
      const key = flagKey(kept);
      groups.set(key, [...(groups.get(key) ?? []), s]);
    }
    for (const [key, sUids] of groups) {
      const dUids = sUids.map((s) => st.map.get(s)?.d ?? 0);
      await dst.ok(`UID STORE ${compressSet(dUids)} FLAGS.SILENT (${key})`);
      for (const s of sUids) {
        cp.record({ t: 'f', s, f: key });
        ledger.record({ ...base, uid: s, outcome: 'flags', destUid: st.map.get(s)?.d });
        stats.flagsUpdated++;
      }
    }
    cp.commit();
  }

  // 3. new messages: stream from the source, match by hash or append
  const progress = (phase: FolderProgressEvent['phase']): void =>
    deps.onProgress?.({
      folder: target.source,
      phase,
      toCopy: delta.toCopy.length,
      toCopyBytes: delta.listedBytes,
      copied: stats.copied + stats.matched,
      copiedBytes: stats.copiedBytes,
      skipped: stats.skipped,
      failed: stats.failed,
    });
  progress('scan');
  const needFlags: { s: number; flags: string[] }[] = [];
  const hashOf = new Map<number, string>();
  let sinceCommit = 0;
  const onResult = (r: AppendResult): void => {
    const s = r.item.uid;
    if (r.ok) {
      cp.record({
        t: 'm',
        s,
        e: {
          d: r.destUid,
          h: hashOf.get(s) ?? '',
          z: r.item.body.length,
          f: flagKey(r.item.flags),
        },
      });
      ledger.record({
        ...base,
        uid: s,
        outcome: 'copied',
        destUid: r.destUid || undefined,
        size: r.item.body.length,
        sha256: hashOf.get(s),
      });
      stats.copied++;
      stats.copiedBytes += r.item.body.length;
      if (r.destUid) stats.written.push(r.destUid);
    } else {
      ledger.record({
        ...base,
        uid: s,
        outcome: 'failed',
        size: r.item.body.length,
        sha256: hashOf.get(s),
        reason: r.reason,
      });
      notCopied(s, 'failed', r.reason);
    }
    hashOf.delete(s);
    disposeBody(r.item.body);
    if (++sinceCommit >= COMMIT_EVERY) {
      cp.commit();
      sinceCommit = 0;
    }
    progress('copy');
  };
  const appender = new Appender(dst, target.destination, {
    multiappend: dst.has('MULTIAPPEND'),
    maxBatchMessages: tuning.maxBatchMessages,
    maxBatchBytes: tuning.maxBatchBytes,
    maxInFlight: tuning.maxInFlight,
    maxInFlightBytes: tuning.maxInFlightBytes,
    onResult,
  });
  const seen = new Set<number>();
  let streamError: unknown = null;
  try {
    for await (const msg of fetchBodies(src, delta.toCopy, {
      maxQueueBytes: tuning.maxQueueBytes,
    })) {
      if (deps.signal?.aborted) throw deps.signal.reason;
      seen.add(msg.uid);
      const { kept, dropped: lost } = filterFlags(msg.flags, policy);
      for (const f of lost) stats.dropped.add(f);
      if (deps.appendLimit !== undefined && msg.size > deps.appendLimit) {
        const reason = `${msg.size} bytes is over the destination's APPENDLIMIT of ${deps.appendLimit} bytes`;
        ledger.record({
          ...base,
          uid: msg.uid,
          outcome: 'skipped',
          size: msg.size,
          sha256: msg.sha256,
          reason,
        });
        notCopied(msg.uid, 'skipped', reason);
        disposeBody(msg.body);
        continue;
      }
      const hit = st.findInPool(msg.sha256, msg.size);
      if (hit) {
        cp.record({ t: 'm', s: msg.uid, e: { d: hit.d, h: msg.sha256, z: msg.size, f: '?' } });
        ledger.record({
          ...base,
          uid: msg.uid,
          outcome: 'matched',
          destUid: hit.d,
          size: msg.size,
          sha256: msg.sha256,
        });
        stats.matched++;
        needFlags.push({ s: msg.uid, flags: kept });
        disposeBody(msg.body);
        progress('copy');
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
  cp.commit();
  if (streamError) throw streamError;
  for (const uid of delta.toCopy) {
    if (seen.has(uid)) continue;
    const reason = 'expunged on the source during the copy';
    ledger.record({ ...base, uid, outcome: 'skipped', reason });
    notCopied(uid, 'skipped', reason);
  }

  // 4. matched messages carry whatever flags the interrupted run gave them: set them now
  for (const { s, flags } of needFlags) {
    const d = st.map.get(s)?.d;
    if (!d) continue;
    await dst.ok(`UID STORE ${d} FLAGS.SILENT (${flagKey(flags)})`);
    cp.record({ t: 'f', s, f: flagKey(flags) });
  }

  // 5. look above the watermark once more: copies whose UID the destination did not tell
  // (no UIDPLUS) are bound by hash, and an APPEND that a killed earlier run had already
  // sent can land while this run works (the server finishes commands it read before it
  // saw the disconnect); it shows up here as an orphan.
  await scanAboveWatermark(dst, cp, tuning);

  // 6-7. our copies left over from a source UIDVALIDITY change or a killed run go; orphans
  // that are someone else's mail stay, counted as extra
  const removed = await removeSurplus(dst, cp);
  stats.expunged += removed.expunged;
  stats.extra += removed.extra;

  // the modseq only counts when everything up to lastUid is on the destination
  cp.record({
    t: 'ms',
    modseq: stats.failed === 0 && sbox.highestModseq ? sbox.highestModseq : '',
    lastUid: delta.lastUid,
  });
  cp.commit();
  let bytes = 0;
  for (const e of st.map.values()) bytes += e.z;
  progress('done');
  const { dropped: _dropped, ...counters } = stats;
  return {
    source: target.source,
    destination: target.destination,
    mode,
    uidValidity: sbox.uidValidity,
    destUidValidity: dbox.uidValidity,
    highestModseq: sbox.highestModseq,
    lastUid: delta.lastUid,
    messages: sbox.exists,
    bytes,
    ...counters,
    droppedFlags: [...stats.dropped].sort(),
    policy,
  };
}
