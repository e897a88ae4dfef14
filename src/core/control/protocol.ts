/**
 * The control protocol between the running `autoport proxy` and the other commands
 * (accounts changes, `autoport monitor`) on the same host.
 *
 * Transport: a Unix stream socket (config control.socket), mode 0600 in a folder only the
 * owner can write, so the kernel refuses every other user at connect (Linux checks write
 * permission on the socket file). Framing: one JSON object per line (UTF-8, `\n`), at
 * most MAX_LINE_BYTES per line; a longer line closes the connection.
 *
 * The client sends requests; the server answers each with a response carrying the same id,
 * in any order. After `watch` the server also pushes a snapshot every `intervalMs` until
 * the connection closes. The first request on a connection should be `hello`, so a client
 * built for another protocol version stops with a clear message instead of misreading.
 */
import type { AccountAction, ChangeResult } from '../accounts/change.js';
import type { CloseReason, SessionProtocol } from '../bus.js';
import type { AccountState, TransferPhase } from '../state/types.js';

export const CONTROL_PROTOCOL_VERSION = 1;
export const MAX_LINE_BYTES = 4 * 1024 * 1024;

/** what `hello` returns */
export interface Hello {
  protocol: number;
  /** autoport's package version */
  version: string;
  pid: number;
  startedAt: string;
  configFile: string;
  listeners: Record<string, { host: string; port: number }>;
}

export type { AccountAction } from '../accounts/change.js';

/** Method name -> [params, result]. */
export interface ControlMethods {
  hello: [Record<string, never>, Hello];
  snapshot: [Record<string, never>, MonitorSnapshot];
  /** start pushing snapshots; the result is the first one */
  watch: [{ intervalMs?: number }, MonitorSnapshot];
  'accounts.change': [{ action: AccountAction; address: string; reason?: string }, ChangeResult];
  /** mark addresses as known from the source's account list (accounts import) */
  'accounts.import': [
    { addresses: string[] },
    /** alreadyKnown = marked (existing records, now marked) + unchanged (imported before) */
    { added: number; alreadyKnown: number; total: number; marked: number; unchanged: number },
  ];
  /**
   * Move one account now: a failed one is retried (like accounts retry), a captured one is
   * put first in line; the worker pool starts it when a slot is free.
   */
  'transfer.start': [{ address: string }, ChangeResult];
}

export type ControlMethod = keyof ControlMethods;
export type ParamsOf<M extends ControlMethod> = ControlMethods[M][0];
export type ResultOf<M extends ControlMethod> = ControlMethods[M][1];

export interface ControlRequest<M extends ControlMethod = ControlMethod> {
  id: number;
  method: M;
  params?: ParamsOf<M>;
}

/** an error the operator can act on: the message, what to try, a stable code */
export interface ControlError {
  message: string;
  hint?: string;
  code?: string;
}

/** id 0 answers a line that was not a readable request (or a refused connection); the connection then ends */
export type ControlResponse =
  { id: number; ok: true; result: unknown } | { id: number; ok: false; error: ControlError };

export interface SnapshotPush {
  push: 'snapshot';
  snapshot: MonitorSnapshot;
}

export type ServerMessage = ControlResponse | SnapshotPush;

/** ---- The monitor's view of the gateway (built by LiveView, pushed by `watch`) ---- */

export interface LiveSession {
  id: string;
  /** the gateway node it is on (the cluster's name for that node; config node.name) */
  node: string;
  protocol: SessionProtocol;
  /** imap, imaps, pop3, smtp, submission ... */
  listener: string;
  client: string;
  /** the account once logged in (submission: the AUTH user; port 25: the last recipient) */
  user?: string;
  route?: 'source' | 'destination';
  tls: boolean;
  openedAt: string;
  /** bytes client -> backend and back so far (known once spliced) */
  bytesIn: number;
  bytesOut: number;
}

export interface ClosedSession extends LiveSession {
  closedAt: string;
  reason: CloseReason;
  durationMs: number;
}

export interface LiveTransfer {
  address: string;
  /** the gateway node moving it */
  node: string;
  attempt: number;
  startedAt: string;
  /** pre-copying while the source serves the account, switching while it is locked */
  step?: TransferPhase;
  /** the folder being worked on and its phase */
  folder?: string;
  phase?: 'scan' | 'copy' | 'done';
  /** this folder: messages copied of toCopy, bytes of toCopyBytes */
  folderCopied: number;
  folderToCopy: number;
  folderBytes: number;
  folderToCopyBytes: number;
  /** folders finished in this run */
  foldersDone: number;
  /** the whole run so far */
  messages: number;
  bytes: number;
  /** over the last few seconds */
  bytesPerSecond: number;
  /** seconds until the current folder is done, when the rate allows a guess */
  folderEtaSeconds?: number;
}

/** one minute of the summary strip (UTC, oldest first) */
export interface MinuteCounts {
  /** ISO time of the minute's start */
  minute: string;
  smtpToSource: number;
  smtpToDestination: number;
  loginsOk: number;
  loginsRefused: number;
}

export interface RecentError {
  at: string;
  kind: 'login' | 'transfer' | 'session' | 'smtp';
  /** the account or client address concerned */
  subject: string;
  message: string;
}

export interface MonitorSnapshot {
  at: string;
  gateway: Hello;
  accounts: Record<AccountState, number>;
  /** captured accounts waiting for a worker */
  queue: number;
  sessions: {
    /** open sessions, pre-auth ones included */
    total: number;
    byProtocol: Record<SessionProtocol, number>;
    /** newest first, at most SNAPSHOT_SESSIONS */
    list: LiveSession[];
  };
  /** the last sessions to end, newest first, at most SNAPSHOT_CLOSED */
  closed: ClosedSession[];
  transfers: LiveTransfer[];
  /** the last SNAPSHOT_MINUTES minutes, oldest first, the current one last */
  minutes: MinuteCounts[];
  /** newest first, at most SNAPSHOT_ERRORS */
  errors: RecentError[];
  /**
   * The gateway nodes sharing the state, this one first (one with the JSON store). The
   * sessions and transfers above include those of the other live nodes, as each published
   * them with its last heartbeat (a few seconds old); closed sessions, minutes and errors
   * are this node's own.
   */
  nodes: NodeSummary[];
  /** the other nodes could not be read: why (the sessions of the last good read are shown) */
  nodesError?: string;
}

export interface NodeSummary {
  name: string;
  /** the node that built this snapshot */
  self: boolean;
  /** its heartbeat is younger than the lease; a dead node's sessions are not shown */
  alive: boolean;
  /** its open sessions and running transfers */
  sessions: number;
  transfers: number;
  /** its last heartbeat */
  seenAt: string;
}

export const SNAPSHOT_SESSIONS = 200;
export const SNAPSHOT_CLOSED = 50;
export const SNAPSHOT_MINUTES = 15;
export const SNAPSHOT_ERRORS = 20;
