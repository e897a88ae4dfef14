/**
 * The session log: every bus event becomes one log line (through the redacting logger)
 * and, when an event log is given, one JSON line in sessions.jsonl, redacted the same way.
 * A failed login is the one line fail2ban matches (failed-login.ts); the login event has no
 * client address, so the address of each open session is kept from its session.opened.
 */
import type { EventBus, GatewayEvent, SessionEvent } from '../bus.js';
import type { EventLog } from '../state/types.js';
import { clientAddress, FAILED_LOGIN_MSG, isFailedLogin } from './failed-login.js';
import type { Logger } from './logger.js';
import { redact } from './redact.js';

export interface SessionLogOptions {
  logger: Logger;
  /** sessions.jsonl (or similar); optional */
  file?: EventLog;
}

function message(
  e: Exclude<GatewayEvent, { type: 'transfer.progress' | 'proxy.refused' }>,
): string {
  switch (e.type) {
    case 'session.opened':
      return `${e.protocol} session opened from ${e.client.address}`;
    case 'session.tls':
      return `${e.protocol} TLS ${e.version}`;
    case 'session.login':
      return `${e.protocol} ${e.user}: login ${e.result}`;
    case 'session.route':
      return `${e.protocol} ${e.user} -> ${e.target} (${e.reason})`;
    case 'session.closed':
      return `${e.protocol} session closed (${e.reason})`;
    case 'account.captured':
      return `captured credentials of ${e.address}`;
    case 'smtp.message':
      return `smtp message to ${e.route}: ${e.code} (${e.recipients} recipient(s), ${e.bytes} bytes)`;
    case 'transfer.started':
      return `transfer of ${e.address} started (attempt ${e.attempt})`;
    case 'transfer.switching':
      return `transfer of ${e.address}: pre-copy done, account locked for the switch`;
    case 'transfer.finished':
      return `transfer of ${e.address} ${e.ok ? 'finished' : 'failed'}${e.lock ? ` (locked ${e.lock.ms} ms)` : ''}`;
    case 'transfer.swept':
      return e.error
        ? `late-mail sweep of ${e.address} failed (${e.messages} message(s) copied): ${e.error}`
        : `late-mail sweep of ${e.address}: ${e.messages} message(s) copied from the source`;
  }
}

type LoginEvent = Extract<SessionEvent, { type: 'session.login' }>;

function logFailedLogin(logger: Logger, e: LoginEvent, client: string | undefined): void {
  // Field order is the contract with the fail2ban filter: protocol, client, user, reason.
  logger.warn(FAILED_LOGIN_MSG, {
    protocol: e.protocol,
    client: client === undefined ? 'unknown' : clientAddress(client),
    user: e.user,
    reason: e.outcome,
    session: e.session,
    mechanism: e.mechanism,
    detail: e.detail,
    event: e.type,
  });
}

/** Subscribe; returns the unsubscribe function. */
export function attachSessionLog(bus: EventBus, opts: SessionLogOptions): () => void {
  const clients = new Map<string, string>();
  return bus.onAny((e) => {
    // progress is for the monitor and metrics; the log has the start and the end. A
    // refused PROXY connection has no session; its listener logs it with the detail.
    if (e.type === 'transfer.progress' || e.type === 'proxy.refused') return;
    opts.file?.append(redact(e) as Record<string, unknown>);
    if (e.type === 'session.opened') clients.set(e.session, e.client.address);
    if (e.type === 'session.closed') clients.delete(e.session);
    if (e.type === 'session.login' && e.result === 'refused' && isFailedLogin(e.outcome)) {
      logFailedLogin(opts.logger, e, clients.get(e.session));
      return;
    }
    const { type, at: _at, ...fields } = e;
    const failed =
      (e.type === 'transfer.finished' && !e.ok) || (e.type === 'transfer.swept' && e.error);
    const level = failed ? 'warn' : 'info';
    opts.logger[level](message(e), { event: type, ...fields });
  });
}
