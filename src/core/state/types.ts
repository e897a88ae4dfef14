/**
 * The account store's data model and interface. The JSON/lowdb store implements it today;
 * a shared backend for several gateway nodes can later sit behind the same interface.
 */
export type AccountState =
  'unknown' | 'captured' | 'transferring' | 'migrated' | 'failed' | 'excluded';

export const ACCOUNT_STATES: readonly AccountState[] = [
  'unknown',
  'captured',
  'transferring',
  'migrated',
  'failed',
  'excluded',
];

/** AES-256-GCM sealed secret (see src/core/state/crypto.ts). All fields base64. */
export interface SealedSecret {
  /** id of the key that sealed it, so keys can be rotated */
  kid: string;
  iv: string;
  tag: string;
  data: string;
}

export interface AccountError {
  at: string; // ISO time
  cause: string;
  detail?: string;
}

/** Per-folder checkpoint of the copy engine. */
export interface FolderProgress {
  /** source folder name as the source spells it */
  source: string;
  /** destination folder name */
  destination: string;
  uidValidity?: number;
  destUidValidity?: number;
  /** highest source UID copied, for quick "what is new" */
  lastUid?: number;
  /** highest MODSEQ seen (CONDSTORE), if any */
  highestModseq?: string;
  messages: number;
  bytes: number;
  copied: number;
  skipped: number;
  failed: number;
  /** a path (relative to the state file's folder) of the folder's UID map, kept out of the main JSON */
  uidMap?: string;
  updatedAt: string;
}

export interface TransferSummary {
  startedAt?: string;
  finishedAt?: string;
  messages: number;
  bytes: number;
  copied: number;
  skipped: number;
  failed: number;
  droppedKeywords?: string[];
  verify?: { ok: boolean; differences: number; at: string };
  /** the switch of the last move (absent when it never got that far) */
  lock?: TransferLock;
}

/**
 * The switch of a two-phase move: how long the account was locked (state transferring:
 * logins refused, mail deferred) and what its final pass moved. The pre-copy before it
 * ran while the source still served the user.
 */
export interface TransferLock {
  /** when the lock started */
  at: string;
  ms: number;
  /** pre-copy passes before the switch */
  passes: number;
  /** what the final pass moved: messages and bytes copied, flag changes, expunges */
  copied: number;
  bytes: number;
  flags: number;
  expunged: number;
}

/** Where a running two-phase move is; absent when no move runs. */
export type TransferPhase = 'pre-copying' | 'switching';

export interface AccountRecord {
  /** lower-cased address (or login name) as the client gave it */
  address: string;
  state: AccountState;
  firstSeen?: string;
  lastSeen?: string;
  lastLogin?: string;
  /** when the state last changed */
  updatedAt: string;
  credentials?: SealedSecret;
  /** why failed/excluded, free text */
  reason?: string;
  attempts?: number;
  nextAttemptAt?: string;
  errors: AccountError[];
  folders: Record<string, FolderProgress>;
  transfer?: TransferSummary;
  /** set while a move runs: pre-copying (still served by the source) or switching (locked) */
  transferPhase?: TransferPhase;
  /** POP3 UIDLs of the source inbox, kept so the gateway can serve them later */
  pop3Uidls?: Record<string, number>;
  /** imported from a list of all source accounts */
  imported?: boolean;
}

export type AccountPatch = Partial<Omit<AccountRecord, 'address'>>;

export interface AccountFilter {
  state?: AccountState | AccountState[];
}

/**
 * Records handed out by get()/list()/upsert()/update() are frozen snapshots: never mutate
 * them (it throws); change a record with upsert() or update(). Addresses are normalised
 * (lower-cased, see normalizeAddress) before use; that normalised address is also the AAD
 * its credentials are sealed with.
 */
export interface StateStore {
  /** path or URL of the store, for messages */
  readonly location: string;
  get(address: string): AccountRecord | undefined;
  list(filter?: AccountFilter): AccountRecord[];
  /**
   * Create the record when missing (state unknown), shallow-merge the patch (a field set to
   * undefined is cleared), schedule a save. updatedAt moves when the state changes.
   */
  upsert(address: string, patch: AccountPatch): AccountRecord;
  /**
   * Apply a synchronous function to a mutable copy of the record (created, state unknown,
   * when missing) and store the copy; if fn throws, nothing changes.
   */
  update(address: string, fn: (rec: AccountRecord) => void): AccountRecord;
  remove(address: string): boolean;
  count(): number;
  /**
   * Make the changes made before the call durable now (the JSON store: one fsynced journal
   * append, shared with concurrent callers); await it before answering on their strength.
   */
  flush(): Promise<void>;
  /** flush and release the lock */
  close(): Promise<void>;
}

/** An append-only JSON-lines log (sessions, smtp relays, transfers, ledger). */
export interface EventLog<T extends object = Record<string, unknown>> {
  readonly path: string;
  append(event: T): void;
  flush(): Promise<void>;
  close(): Promise<void>;
}
