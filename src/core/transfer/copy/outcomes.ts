/**
 * Where each message's outcome in one folder is written: the checkpoint (what is on the
 * destination, for the next run), the ledger (what happened, for the operator) and the run's
 * counters. One method per outcome, so the phases of folder-copy.ts say what happened and
 * this class writes it to all three, the same way every time.
 */
import type { Checkpoint, PoolEntry } from './checkpoint.js';
import { flagKey } from './flags.js';
import type { FolderStats, NotCopied } from './folder-result.js';
import type { AccountLedger } from './ledger.js';

/** The source folder a ledger line is about. */
export interface LedgerFolder {
  folder: string;
  uidValidity: number;
}

export class FolderOutcomes {
  constructor(
    private readonly cp: Checkpoint,
    private readonly ledger: AccountLedger,
    readonly stats: FolderStats,
    private readonly base: LedgerFolder,
  ) {}

  /** The source expunged it; our copy was removed from the destination. */
  expunged(sourceUid: number): void {
    const destUid = this.cp.state.map.get(sourceUid)?.d;
    this.ledger.record({ ...this.base, uid: sourceUid, outcome: 'expunged', destUid });
    this.cp.forget(sourceUid);
    this.stats.expunged++;
  }

  /** The destination copy now has these flags (a flagKey). */
  flagsSet(sourceUid: number, flags: string): void {
    this.cp.flagsWritten(sourceUid, flags);
    const destUid = this.cp.state.map.get(sourceUid)?.d;
    this.ledger.record({ ...this.base, uid: sourceUid, outcome: 'flags', destUid });
    this.stats.flagsUpdated++;
  }

  /** The destination accepted the APPEND (destUid 0: it did not say where, no UIDPLUS). */
  copied(
    sourceUid: number,
    m: { destUid: number; sha256: string | undefined; size: number; flags: readonly string[] },
  ): void {
    this.cp.bind(sourceUid, { d: m.destUid, h: m.sha256 ?? '', z: m.size, f: flagKey(m.flags) });
    this.ledger.record({
      ...this.base,
      uid: sourceUid,
      outcome: 'copied',
      destUid: m.destUid || undefined,
      size: m.size,
      sha256: m.sha256,
    });
    this.stats.copied++;
    this.stats.copiedBytes += m.size;
    if (m.destUid) this.stats.written.push(m.destUid);
  }

  /** Already on the destination (a pool entry with the same bytes): bound, not copied again. */
  matched(sourceUid: number, hit: PoolEntry): void {
    this.cp.bindToPool(sourceUid, hit);
    this.ledger.record({
      ...this.base,
      uid: sourceUid,
      outcome: 'matched',
      destUid: hit.d,
      size: hit.z,
      sha256: hit.h,
    });
    this.stats.matched++;
  }

  /**
   * Not copied this run, and why. A message retried within the run counts once, under its
   * last outcome.
   */
  notCopied(
    sourceUid: number,
    why: NotCopied,
    detail: { size?: number; sha256?: string } = {},
  ): void {
    this.ledger.record({
      ...this.base,
      uid: sourceUid,
      outcome: why.outcome,
      ...detail,
      reason: why.reason,
    });
    const before = this.stats.notCopied.get(sourceUid);
    if (before) this.stats[before.outcome]--;
    this.stats[why.outcome]++;
    this.stats.notCopied.set(sourceUid, { outcome: why.outcome, reason: why.reason });
  }
}
