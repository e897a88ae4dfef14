/**
 * The relay log: one JSON line per message the gateway relayed to a backend (the source
 * or the destination), whatever the backend answered. `report leftovers` reads it to
 * show which addresses still get mail through the source, and which of that mail looks
 * automatic (lists, bulk senders, auto-responders): rules the administrator has to
 * recreate on the destination before switching the source off.
 *
 * The log holds no message content: the Subject is kept as a hash (grouping repeated
 * mail such as a daily report works, reading it does not).
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { openEventLog, type EventLogOptions } from '../state/event-log.js';
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

/**
 * Collects the header section (RFC 5322 2.1) from the first chunks of a message, up to
 * the empty line or a byte limit, whichever comes first.
 */
export class HeaderCollector {
  private parts: Buffer[] = [];
  private size = 0;
  private done = false;

  constructor(private readonly maxBytes: number) {}

  push(chunk: Buffer): void {
    if (this.done) return;
    const room = this.maxBytes - this.size;
    const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
    this.parts.push(part);
    this.size += part.length;
    // An empty line split across two chunks is missed here; headers() still finds it.
    if (this.size >= this.maxBytes || part.includes('\n\r\n') || part.includes('\n\n'))
      this.done = true;
  }

  /** Header fields by lower-cased name, values unfolded (RFC 5322 2.2.3) and trimmed. */
  headers(): Map<string, string[]> {
    const text = Buffer.concat(this.parts).toString('utf8');
    const end = text.search(/\r?\n\r?\n/);
    return parseHeaders(end >= 0 ? text.slice(0, end) : text);
  }
}

export function parseHeaders(section: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let name: string | undefined;
  let value = '';
  const flush = (): void => {
    if (name === undefined) return;
    const list = out.get(name) ?? [];
    list.push(value.trim());
    out.set(name, list);
  };
  for (const line of section.split(/\r?\n/)) {
    if (/^[ \t]/.test(line) && name !== undefined) {
      value += ` ${line.trim()}`;
      continue;
    }
    flush();
    const colon = line.indexOf(':');
    if (colon <= 0) {
      name = undefined;
      continue;
    }
    name = line.slice(0, colon).trim().toLowerCase();
    value = line.slice(colon + 1);
  }
  flush();
  return out;
}

const VACATION_SUBJECT =
  /^(auto(matic)?[ -]?(reply|response|antwort)|out of (the )?office|abwesenheit|absence|vacation|r[ée]ponse automatique|autoreply)\b/i;

export interface MessageFacts {
  messageId?: string;
  subjectHash?: string;
  auto: AutoHint[];
  autoSubmitted?: string;
  precedence?: string;
  listId?: string;
}

/** What the relay log keeps of a message's headers. */
export function messageFacts(headers: Map<string, string[]>, from: string): MessageFacts {
  const first = (n: string): string | undefined => headers.get(n)?.[0];
  const facts: MessageFacts = { auto: [] };
  const mid = first('message-id');
  if (mid) facts.messageId = mid.slice(0, 256);
  const subject = first('subject');
  if (subject !== undefined)
    facts.subjectHash = createHash('sha256').update(subject, 'utf8').digest('hex').slice(0, 16);
  const autoSubmitted = first('auto-submitted')?.toLowerCase();
  if (autoSubmitted && !/^no\b/.test(autoSubmitted)) {
    facts.auto.push('auto-submitted');
    facts.autoSubmitted = autoSubmitted.slice(0, 64);
  }
  const precedence = first('precedence')?.toLowerCase();
  if (precedence && /^(bulk|list|junk)\b/.test(precedence)) {
    facts.auto.push('precedence');
    facts.precedence = precedence.slice(0, 32);
  }
  const listId = first('list-id');
  if (listId) {
    facts.auto.push('list');
    facts.listId = listId.slice(0, 256);
  }
  const vacation =
    autoSubmitted?.startsWith('auto-replied') === true ||
    headers.has('x-autoreply') ||
    headers.has('x-autorespond') ||
    (subject !== undefined && VACATION_SUBJECT.test(subject));
  if (vacation) facts.auto.push('vacation');
  if (from === '') facts.auto.push('null-sender');
  return facts;
}
