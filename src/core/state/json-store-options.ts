/** The JSON store's options and status: what callers configure and what health checks read. */
import type { StoreFileAdapter } from './store-file.js';
import type { StateStore } from './types.js';

export interface JsonStoreOptions {
  /** delay between the first unsaved change and its save (default 100 ms) */
  saveDelayMs?: number;
  /** replaces the file adapter (tests count writes or inject failures with it) */
  adapter?: StoreFileAdapter;
  /**
   * Read a store another process may own (reports, `accounts list` while the gateway runs):
   * no lock is taken and every change throws. It sees what the owner saved (snapshot and
   * journal) when it opened.
   */
  readOnly?: boolean;
  /** stale lock takeover and similar (default: process.emitWarning) */
  onWarning?: (message: string) => void;
  /**
   * Saving failed after working (or since open): called once per episode, not for every
   * retry, so a full disk does not flood the log. Saves are retried every second.
   * Default: process.emitWarning.
   */
  onSaveError?: (err: Error) => void;
  /** a save worked again after onSaveError; `failures` failed saves in that episode */
  onSaveRecovered?: (info: { failures: number; since: Date }) => void;
  /** journal bytes from which a compaction may start (default COMPACT_MIN_JOURNAL_BYTES) */
  compactMinBytes?: number;
  now?: () => Date;
  /** this node's name among the cluster's (config nodeName; default the host name) */
  nodeName?: string;
}

export interface StoreStatus {
  accounts: number;
  dirty: boolean;
  saving: boolean;
  /** completed saves since open */
  saves: number;
  lastSavedAt?: string;
  lastSaveMs?: number;
  /** message of the last failed save, cleared by the next successful one */
  lastError?: string;
  /** failed saves since open, retries included */
  failures: number;
  /** when the current run of failed saves began (absent while saving works) */
  failingSince?: string;
  journalBytes: number;
  snapshotBytes: number;
  compacting: boolean;
  /** completed compactions since open */
  compactions: number;
  lastCompactionMs?: number;
  /** message of the last failed compaction, cleared by the next successful one */
  lastCompactionError?: string;
}

export interface JsonStore extends StateStore {
  /** for health checks: a store that cannot save should make the gateway fail closed */
  status(): StoreStatus;
  /** fold the journal into a new snapshot now (it also happens by itself, see compactIfDue) */
  compact(): Promise<void>;
}
