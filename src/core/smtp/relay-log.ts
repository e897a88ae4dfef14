/**
 * The relay log: one JSON line per message the gateway relayed to a backend (the source
 * or the destination), whatever the backend answered. `report leftovers` reads it to
 * show which addresses still get mail through the source, and which of that mail looks
 * automatic (lists, bulk senders, auto-responders): rules the administrator has to
 * recreate on the destination before switching the source off.
 *
 * This module is the log's format: its file name, its entry, the writer the SMTP side
 * records with and the reader the reports use. What an entry says about a message's
 * headers is worked out in message-facts.ts.
 *
 * The log holds no message content: the Subject is kept as a hash (grouping repeated
 * mail such as a daily report works, reading it does not).
 */
import { join } from 'node:path';
import { openEventLog, readEventLog, type EventLogOptions } from '../state/event-log.js';
import type { EventLog } from '../state/types.js';
import type { RouteReason } from '../routing/decide.js';
import type { Side } from './recipients.js';

export const RELAY_LOG_FILE = 'smtp-relay.jsonl';

export type AutoHint =
  /** Auto-Submitted (RFC 3834) other than "no" */
  | 'auto-submitted'
  /** Precedence: bulk, list or junk */
  | 'precedence'
  /** List-Id (RFC 2919) */
  | 'list'
  /** an auto-reply: Auto-Submitted: auto-replied, X-Autoreply, or an out-of-office Subject */
  | 'vacation'
  /** the null sender MAIL FROM:<> of bounces and auto-replies (RFC 5321 4.5.5) */
  | 'null-sender';

export interface RelayLogEntry {
  time: string;
  session: string;
  /** smtp (port 25), submission (587) or submissions (465) */
  listener: string;
  client: string;
  helo?: string;
  /** the authenticated user on submission */
  user?: string;
  /** envelope sender, '' for the null sender */
  from: string;
  recipients: Array<{ address: string; reason: RouteReason }>;
  /** bytes of the message as the client sent it (after dot-unstuffing) */
  size: number;
  messageId?: string;
  /** first 16 hex digits of SHA-256 of the unfolded Subject */
  subjectHash?: string;
  /** source or destination */
  route: Side;
  /** host:port of the backend */
  backend: string;
  /** the backend's reply to the end of DATA, as one line */
  reply: string;
  accepted: boolean;
  auto: AutoHint[];
  /** values behind the hints, for the report */
  autoSubmitted?: string;
  precedence?: string;
  listId?: string;
  /** bare CR/LF turned into CRLF before relaying (smuggling.ts) */
  bareLineEndings?: number;
  durationMs: number;
}

export interface RelayLog {
  record(entry: RelayLogEntry): void;
  flush(): Promise<void>;
  close(): Promise<void>;
}

export function relayLogOf(log: EventLog<RelayLogEntry>): RelayLog {
  return {
    // Called after the backend accepted the message: a log that cannot take the entry (closed
    // during shutdown) must not turn that 250 into an error, or the sender sends it again.
    record: (e) => {
      try {
        log.append(e);
      } catch {
        // the message is delivered; only its line in the relay log is missing
      }
    },
    flush: () => log.flush(),
    // The gateway closes it on the way out, before it stops the worker pool: a disk that is
    // still full then must not stop the shutdown (its onError already told the operator).
    close: () => log.close().catch(() => undefined),
  };
}

/** Open (create) `<logDir>/smtp-relay.jsonl`. */
export async function openRelayLog(logDir: string, options?: EventLogOptions): Promise<RelayLog> {
  return relayLogOf(await openEventLog<RelayLogEntry>(join(logDir, RELAY_LOG_FILE), options));
}

/** Logs are files other programs may have touched: only lines of the entry's shape count. */
export function isRelayLogEntry(e: unknown): e is RelayLogEntry {
  const r = e as Partial<RelayLogEntry> | null;
  return (
    typeof r === 'object' &&
    r !== null &&
    typeof r.time === 'string' &&
    Array.isArray(r.recipients) &&
    (r.route === 'source' || r.route === 'destination')
  );
}

/** The entries of `<logDir>/smtp-relay.jsonl`, rotated files included, oldest first. */
export async function* readRelayLog(logDir: string): AsyncGenerator<RelayLogEntry> {
  for await (const e of readEventLog(join(logDir, RELAY_LOG_FILE), { includeRotated: true }))
    if (isRelayLogEntry(e)) yield e;
}
