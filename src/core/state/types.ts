/**
 * The account store's data model and interface, implemented by the JSON/lowdb store (one
 * node) and the PostgreSQL store (a shared backend for one or several gateway nodes).
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
  /** late mail the sweeps after the switch copied, in total (workers/late-mail.ts) */
  swept?: { at: string; messages: number; bytes: number };
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
  /** late-mail sweeps still due after the switch, earliest first (workers/late-mail.ts) */
  sweepAt?: string[];
  /** POP3 UIDLs of the source inbox, kept so the gateway can serve them later */
  pop3Uidls?: Record<string, number>;
  /** imported from a list of all source accounts */
  imported?: boolean;
}

export type AccountPatch = Partial<Omit<AccountRecord, 'address'>>;

export interface AccountFilter {
  state?: AccountState | AccountState[];
  /** only records with a transferPhase (a move was under way) */
  moving?: boolean;
  /** at most this many records (the order is then the store's, stable for one store) */
  limit?: number;
  /**
   * only records whose address comes after this one, in address order (the store's own
   * collation): pages through every record with `limit`, each page after the last address
   * of the one before
   */
  after?: string;
}

/** Accounts by state and the worker pool's queue, for the monitor and the metrics. */
export interface AccountCounts {
  /** every state, zeros included */
  byState: Record<AccountState, number>;
  /** captured with a stored password: what the worker pool takes next */
  queue: number;
}

/** What the worker pool asks on each tick (see StateStore.due). */
export interface DueQuery {
  now: Date;
  /** failed accounts with this many attempts or more are left alone */
  maxAttempts: number;
  limit: number;
}

/** What the late-mail sweeper asks (see StateStore.dueSweeps). */
export interface SweepQuery {
  now: Date;
  limit: number;
}

/**
 * Records handed out by get()/list()/upsert()/update() are frozen snapshots: never mutate
 * them (it throws); change a record with upsert() or update(). Addresses are normalised
 * (lower-cased, see normalizeAddress) before use; that normalised address is also the AAD
 * its credentials are sealed with.
 *
 * The interface is asynchronous because a backend may be across a network (PostgreSQL).
 * Each call is atomic on its own record; a read followed by a write is not, so a decision
 * that depends on the record's current value is made inside update()'s function.
 */
export interface StateStore {
  /** path or URL of the store (without a password), for messages */
  readonly location: string;
  /**
   * the folder of this store's side files (side-files.ts); unset: `<name>-data` beside the
   * state file named by `location`
   */
  readonly sideDir?: string;
  get(address: string): Promise<AccountRecord | undefined>;
  list(filter?: AccountFilter): Promise<AccountRecord[]>;
  /**
   * Captured accounts with credentials (oldest change first), then failed accounts with
   * credentials due for a retry (fewer than maxAttempts attempts, nextAttemptAt absent or
   * not after now; oldest change first), at most `limit` in all. Answered from an index,
   * not a scan of every record.
   */
  due(query: DueQuery): Promise<AccountRecord[]>;
  /**
   * Migrated accounts whose first sweepAt is not after now, earliest first, at most
   * `limit`: answered from an index of pending sweeps, not a scan of the migrated accounts.
   */
  dueSweeps(query: SweepQuery): Promise<AccountRecord[]>;
  /** counts by state, kept or indexed by the store (no scan of every record) */
  counts(): Promise<AccountCounts>;
  /**
   * Create the record when missing (state unknown), shallow-merge the patch (a field set to
   * undefined is cleared), schedule a save. updatedAt moves when the state changes.
   */
  upsert(address: string, patch: AccountPatch): Promise<AccountRecord>;
  /**
   * Apply a synchronous function to a mutable copy of the record (created, state unknown,
   * when missing) and store the copy, atomically: what is stored is fn's work on the
   * record as it was when stored, never on an older one. If fn throws, nothing changes and
   * the call rejects with its error. fn may run more than once (PostgreSQL runs it again
   * when another writer changed the record between its read and its write), so it must
   * not count its runs: a variable it sets outside, it sets on every run.
   */
  update(address: string, fn: (rec: AccountRecord) => void): Promise<AccountRecord>;
  /**
   * Store whole new records exactly as given (updatedAt included), in one transaction:
   * all or none, and none if any address exists already. For `autoport state import`
   * while no gateway runs (other nodes are not told). Optional: a backend without it is
   * written with upsert(), one record at a time.
   */
  insertMany?(records: readonly AccountRecord[]): Promise<void>;
  remove(address: string): Promise<boolean>;
  count(): Promise<number>;
  /**
   * Make the changes made before the call durable now (the JSON store: one fsynced journal
   * append, shared with concurrent callers; PostgreSQL: every change is committed before
   * its call resolves); await it before answering on their strength.
   */
  flush(): Promise<void>;
  /**
   * Resolves when the store can take changes now; rejects with StoreUnavailableError (the
   * database does not answer, the JSON store's saves are failing) otherwise. For /healthz.
   */
  ping(): Promise<void>;
  /** the gateway nodes sharing this store (cluster.ts); one, for the JSON store */
  readonly cluster: Cluster;
  /** small per-account data every node sees (side-data.ts) */
  readonly side: SideData;
  /** flush, leave the cluster and release the lock or connections */
  close(): Promise<void>;
}

/** An append-only JSON-lines log (sessions, smtp relays, transfers, ledger). */
export interface EventLog<T extends object = Record<string, unknown>> {
  readonly path: string;
  append(event: T): void;
  flush(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The gateway nodes sharing one store, as each node sees them. With the JSON store a node
 * is alone (the store's lock says so) and `LocalCluster` (local-cluster.ts) answers from memory; with
 * PostgreSQL several `autoport proxy` processes share the database (pg-cluster.ts):
 *
 * - a move or a late-mail sweep of an account runs on one node at a time: it claims the
 *   account first, and the claim holds while its node is alive (a heartbeat every few
 *   seconds); a node that dies leaves its claims to be taken over once its heartbeat is
 *   older than the lease, and what it left mid-move is then an orphan to reset;
 * - a change of an account's state or phase made on one node reaches the others within
 *   about a second (onChange), so a switch closes the account's sessions on every node;
 * - small messages between nodes (the brakes' failures) go the same way (publish);
 * - each node publishes a summary of itself (its open sessions) that any node's monitor
 *   can show (nodes()).
 */

/** A change of an account's state or move phase made by another node. */
export interface ClusterChange {
  address: string;
  state: AccountState;
  phase?: TransferPhase;
  /** the node that made it */
  node: string;
}

/** A node as the others see it. */
export interface NodeView {
  /** unique per process (name:pid:random) */
  node: string;
  /** what the operator calls it (config nodeName, default the host name) */
  name: string;
  startedAt: string;
  /** its last heartbeat */
  seenAt: string;
  /** the heartbeat is younger than the lease */
  alive: boolean;
  /** what it published last with publishView (bounded by its publisher) */
  view?: unknown;
}

export interface Cluster {
  /** this process among the nodes */
  readonly node: string;
  readonly name: string;
  /** other nodes may share the store (PostgreSQL) */
  readonly shared: boolean;
  /**
   * Become a node: start the heartbeat (and listening for the others). Only the gateway
   * joins; commands that read or change accounts do not.
   */
  join(): Promise<void>;
  /**
   * Take the account for a move or a sweep: true when no live node holds it (or this one
   * already does). A record lock taken elsewhere makes it false at once (SKIP LOCKED).
   */
  claim(address: string): Promise<boolean>;
  /** Give the account back (no-op when another node holds it). */
  release(address: string): Promise<void>;
  /**
   * Accounts left mid-move (a transferPhase, or state transferring) that no live node
   * holds: a node died, or this one restarted. Claim one before repairing it.
   */
  orphans(limit: number): Promise<AccountRecord[]>;
  /** changes made by other nodes; returns the unsubscribe */
  onChange(fn: (change: ClusterChange) => void): () => void;
  /** send a small message to the other nodes (not to this one) */
  publish(topic: string, data: unknown): void;
  onMessage(topic: string, fn: (data: unknown, node: string) => void): () => void;
  /**
   * This node could not heartbeat for a lease: other nodes may take its claims now, so
   * what it runs on claims must stop.
   */
  onLost(fn: () => void): () => void;
  /** kept with the next heartbeat, for other nodes' nodes() (keep it small: capped lists) */
  publishView(view: unknown): void;
  /** every node that heartbeat within the last hour, this one included */
  nodes(): Promise<NodeView[]>;
  /** stop heartbeating and listening (the store's close() calls it) */
  leave(): Promise<void>;
}

/** The heartbeat and the lease: a node whose heartbeat is older than leaseMs is dead. */
export interface ClusterTiming {
  heartbeatMs: number;
  leaseMs: number;
}

export const DEFAULT_CLUSTER_TIMING: ClusterTiming = { heartbeatMs: 2_000, leaseMs: 15_000 };

/** Small per-account data kept beside the record by key, seen by every node (side-data.ts). */
export interface SideData {
  /** undefined when nothing is kept under that key */
  read<T = unknown>(address: string, key: string): Promise<T | undefined>;
  /** replaces what is kept under that key, durably */
  write(address: string, key: string, data: unknown): Promise<void>;
  /**
   * A number that changes whenever the data under that key is written (a file's mtime, a
   * row's write time), for caches; undefined when nothing is kept.
   */
  version(address: string, key: string): Promise<number | undefined>;
  /** everything kept for the account */
  remove(address: string): Promise<void>;
  /**
   * What is kept under any of `keys` for any of `addresses`, at once (`state export` asks a
   * page of accounts at a time). Optional: without it, read() per account and key.
   */
  readMany?(
    addresses: readonly string[],
    keys: readonly string[],
  ): Promise<Array<{ address: string; key: string; data: unknown }>>;
}
