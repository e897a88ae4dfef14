/**
 * The session log: every bus event becomes one log line (through the redacting logger)
 * and, when an event log is given, one JSON line in sessions.jsonl, redacted the same way.
 */
import type { EventBus, GatewayEvent } from '../bus.js';
import type { EventLog } from '../state/types.js';
import type { Logger } from './logger.js';
import { redact } from './redact.js';

export interface SessionLogOptions {
  logger: Logger;
  /** sessions.jsonl (or similar); optional */
  file?: EventLog;
}

function message(e: Exclude<GatewayEvent, { type: 'transfer.progress' }>): string {
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
    case 'transfer.finished':
      return `transfer of ${e.address} ${e.ok ? 'finished' : 'failed'}`;
  }
}

/** Subscribe; returns the unsubscribe function. */
export function attachSessionLog(bus: EventBus, opts: SessionLogOptions): () => void {
  return bus.onAny((e) => {
    // progress is for the monitor and metrics; the log has the start and the end
    if (e.type === 'transfer.progress') return;
    const { type, at: _at, ...fields } = e;
    const level = e.type === 'transfer.finished' && !e.ok ? 'warn' : 'info';
    opts.logger[level](message(e), { event: type, ...fields });
    opts.file?.append(redact(e) as Record<string, unknown>);
  });
}
