/**
 * What copying one folder reports: its progress events, the counters an attempt carries to
 * the next (retries within one run), and its result, summed per account in result.ts.
 */
import type { FlagPolicy } from './flags.js';
import type { DeltaMode } from './incremental.js';

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

/** Why a source message was not copied this run. */
export interface NotCopied {
  outcome: 'skipped' | 'failed';
  reason: string;
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
  notCopied: Map<number, NotCopied>;
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
  notCopied: Map<number, NotCopied>;
  policy: FlagPolicy;
}
