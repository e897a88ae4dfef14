/**
 * What the relay log keeps of a message's header section (relay-log.ts): its Message-ID,
 * a hash of its Subject, and the hints that it was sent automatically.
 */
import { createHash } from 'node:crypto';
import type { AutoHint } from './relay-log.js';

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
