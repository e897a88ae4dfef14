/**
 * The in-process event bus: every session and transfer of the gateway is a stream of typed
 * events here. The session log, the monitor and metrics subscribe; front-ends only emit.
 * A throwing subscriber is reported through `onListenerError` and never breaks a session.
 */
import type { Outcome } from './replies.js';
import type { RouteReason } from './routing/decide.js';
import type { TransferLock } from './state/types.js';
import type { FolderProgressEvent } from './transfer/copy/folder-copy.js';

export type SessionProtocol = 'imap' | 'pop3' | 'smtp';
export type CloseReason =
  | 'client-closed'
  | 'client-logout'
  | 'backend-closed'
  | 'idle-timeout'
  | 'preauth-timeout'
  | 'protocol-error'
  | 'too-many-failures'
  | 'limit'
  | 'account-locked'
  | 'shutdown'
  | 'error';

/** One login at a backend during a client's login; `ms` until it answered, either way. */
export interface BackendCheck {
  side: 'source' | 'destination';
  ms: number;
}

interface Base {
  /** session id, also sent to backends as x-session-id */
  session: string;
  at: string;
}

export type SessionEvent =
  | (Base & {
      type: 'session.opened';
      protocol: SessionProtocol;
      listener: string;
      client: { address: string; port: number };
      tls: boolean;
    })
  | (Base & { type: 'session.tls'; protocol: SessionProtocol; version: string; cipher: string })
  | (Base & {
      type: 'session.login';
      protocol: SessionProtocol;
      user: string;
      mechanism: string;
      result: 'ok' | 'refused';
      outcome?: Outcome;
      detail?: string;
      /** the backend login that checked the password, timed (none when no backend was asked) */
      check?: BackendCheck;
    })
  | (Base & {
      type: 'session.route';
      protocol: SessionProtocol;
      user: string;
      target: 'source' | 'destination' | 'refuse';
      reason: RouteReason | 'immediate-fallback';
    })
  | (Base & {
      type: 'session.closed';
      protocol: SessionProtocol;
      user?: string;
      reason: CloseReason;
      bytesIn: number;
      bytesOut: number;
      durationMs: number;
      detail?: string;
    });

/** One message relayed by the SMTP front end (also written to the relay log). */
export interface SmtpMessageEvent extends Base {
  type: 'smtp.message';
  /** smtp (port 25), submission or submissions */
  listener: string;
  route: 'source' | 'destination';
  /** the backend's reply code to the end of DATA */
  code: number;
  accepted: boolean;
  recipients: number;
  bytes: number;
  /** from the start of DATA to the backend's reply: the client's upload and the backend's work */
  durationMs: number;
}

/**
 * A connection closed before any session on a PROXY protocol listener (proxy-gate.ts):
 * from an address not trusted, too many waiting, or no valid header. Logged by the
 * listener with its detail; counted by metrics.
 */
export interface ProxyRefusedEvent {
  type: 'proxy.refused';
  at: string;
  listener: string;
  reason: 'untrusted' | 'busy' | 'bad-header';
  /** the address the connection came from */
  proxy: string;
}

/**
 * Where one running transfer is (the copy engine's own progress event, without the
 * skipped count): one event per folder phase and every few hundred ms while copying.
 */
export type TransferProgress = Omit<FolderProgressEvent, 'skipped'>;

/**
 * A move (workers/worker-pool.ts) starts with its pre-copy (transfer.started; the source
 * still serves the account), then locks the account (`transferring`: logins refused, mail
 * deferred) for its switch (transfer.switching) until just before transfer.finished, which
 * carries the lock as the copy engine measured it (absent when the move never switched).
 */
export type TransferEvent =
  | { type: 'account.captured'; at: string; address: string; state: string }
  | { type: 'transfer.started'; at: string; address: string; attempt: number }
  | { type: 'transfer.switching'; at: string; address: string }
  | ({ type: 'transfer.progress'; at: string; address: string } & TransferProgress)
  | {
      type: 'transfer.finished';
      at: string;
      address: string;
      ok: boolean;
      /** stopped by the gateway itself (shutdown, immediate-login timeout): not the account's fault */
      aborted?: boolean;
      durationMs: number;
      detail?: string;
      /** the switch: lock duration and what its final pass moved */
      lock?: TransferLock;
    }
  | {
      /** a late-mail sweep after the switch (workers/late-mail.ts); the account stays migrated */
      type: 'transfer.swept';
      at: string;
      address: string;
      messages: number;
      bytes: number;
      /** what kept it from sweeping everything; retried at the next sweep time */
      error?: string;
    };

export type GatewayEvent = SessionEvent | SmtpMessageEvent | ProxyRefusedEvent | TransferEvent;
export type GatewayEventType = GatewayEvent['type'];
type EventOf<T extends GatewayEventType> = Extract<GatewayEvent, { type: T }>;

export class EventBus {
  private readonly byType = new Map<string, Set<(e: GatewayEvent) => void>>();
  private readonly any = new Set<(e: GatewayEvent) => void>();

  constructor(private readonly onListenerError: (err: unknown) => void = () => undefined) {}

  on<T extends GatewayEventType>(type: T, fn: (e: EventOf<T>) => void): () => void {
    let set = this.byType.get(type);
    if (!set) this.byType.set(type, (set = new Set()));
    const f = fn as (e: GatewayEvent) => void;
    set.add(f);
    return () => void set.delete(f);
  }

  onAny(fn: (e: GatewayEvent) => void): () => void {
    this.any.add(fn);
    return () => void this.any.delete(fn);
  }

  emit(e: GatewayEvent): void {
    for (const fn of this.byType.get(e.type) ?? []) this.call(fn, e);
    for (const fn of this.any) this.call(fn, e);
  }

  private call(fn: (e: GatewayEvent) => void, e: GatewayEvent): void {
    try {
      fn(e);
    } catch (err) {
      this.onListenerError(err);
    }
  }
}
