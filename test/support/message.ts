/**
 * Raw RFC 5322 messages for test corpora: pure functions, CRLF line endings, deterministic
 * output for the same input (so a test can compare bytes on both sides of a copy).
 */
import { createHash } from 'node:crypto';

export interface Attachment {
  filename: string;
  contentType: string;
  data: Buffer;
}

export interface MessageSpec {
  from?: string;
  to?: string;
  subject?: string;
  date?: Date;
  /** text body; LF or CRLF; non-ASCII text is sent as 8bit UTF-8 */
  body?: string;
  /** pad the text with filler lines to exactly this many bytes in total (when larger) */
  size?: number;
  /** undefined: derived from the content (unique per content); null: no Message-ID header */
  messageId?: string | null;
  /** extra header fields, in order, values as written (may contain folding CRLF+WSP) */
  headers?: Array<[string, string]> | Record<string, string>;
  /** makes a multipart/mixed message with the file base64-encoded (RFC 2045 6.8) */
  attachment?: Attachment;
  /** seed for the filler text (default: derived from the subject) */
  seed?: number;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** RFC 5322 3.3 date-time in UTC, e.g. "Fri, 31 Dec 1999 23:59:59 +0000". */
export function rfc5322Date(d: Date): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return (
    `${DAYS[d.getUTCDay()]}, ${p(d.getUTCDate())} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ` +
    `${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`
  );
}

// eslint-disable-next-line no-control-regex
const NON_ASCII = /[^\x00-\x7f]/;

/** RFC 2047 encoded-word for a header value that is not plain ASCII. */
export function encodeWord(text: string): string {
  return NON_ASCII.test(text)
    ? `=?UTF-8?B?${Buffer.from(text, 'utf8').toString('base64')}?=`
    : text;
}

function crlf(text: string): string {
  return text.replace(/\r?\n/g, '\r\n');
}

/** Small fast PRNG (mulberry32): same seed, same sequence, on every machine. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function seedOf(text: string): number {
  return createHash('sha256').update(text).digest().readUInt32BE(0);
}

const WORDS = (
  'the of and to in is mail server folder message account migration copy flag date size ' +
  'inbox sent draft archive trash junk header body line quota proxy gateway user login ' +
  'password transfer resume verify client protocol imap pop smtp lmtp dovecot postfix'
).split(' ');

/** Exactly `n` bytes of ASCII filler in CRLF-terminated lines of at most 78 bytes. */
export function fillerText(n: number, seed: number): string {
  if (n <= 0) return '';
  const rnd = prng(seed);
  const lines: string[] = [];
  let left = n;
  while (left >= 2) {
    const len = Math.min(76, left - 2);
    let line = '';
    while (line.length < len) line += `${WORDS[Math.floor(rnd() * WORDS.length)]} `;
    lines.push(line.slice(0, len));
    left -= len + 2;
  }
  // One byte left over: widen a line (lines may be up to 998 bytes, RFC 5322 2.1.1).
  if (left === 1 && lines.length > 0) lines[lines.length - 1] += '.';
  return lines.map((l) => `${l}\r\n`).join('');
}

function wrap76(b64: string): string {
  return (b64.match(/.{1,76}/g) ?? []).join('\r\n');
}

function headerLines(spec: MessageSpec, messageId: string | null): string[] {
  const h: string[] = [];
  if (messageId !== null) h.push(`Message-ID: ${messageId}`);
  h.push(`Date: ${rfc5322Date(spec.date ?? new Date(Date.UTC(2024, 0, 15, 9, 30, 0)))}`);
  h.push(`From: ${spec.from ?? 'Sender <sender@example.net>'}`);
  h.push(`To: ${spec.to ?? 'Recipient <recipient@example.org>'}`);
  h.push(`Subject: ${encodeWord(spec.subject ?? 'Test message')}`);
  const extra = Array.isArray(spec.headers) ? spec.headers : Object.entries(spec.headers ?? {});
  for (const [name, value] of extra) h.push(`${name}: ${value}`);
  h.push('MIME-Version: 1.0');
  return h;
}

function assemble(spec: MessageSpec, messageId: string | null, text: string): string {
  const eight = NON_ASCII.test(text);
  const textType = `Content-Type: text/plain; charset=${eight ? 'utf-8' : 'us-ascii'}`;
  const cte = `Content-Transfer-Encoding: ${eight ? '8bit' : '7bit'}`;
  const head = headerLines(spec, messageId);
  if (!spec.attachment) return [...head, textType, cte, '', text].join('\r\n');
  const a = spec.attachment;
  const boundary = `=_autoport_${seedOf(messageId ?? spec.subject ?? '').toString(16)}`;
  return [
    ...head,
    `Content-Type: multipart/mixed; boundary="${boundary}"`,
    '',
    'This is a multi-part message in MIME format.',
    `--${boundary}`,
    textType,
    cte,
    '',
    text,
    `--${boundary}`,
    `Content-Type: ${a.contentType}; name="${a.filename}"`,
    'Content-Transfer-Encoding: base64',
    `Content-Disposition: attachment; filename="${a.filename}"`,
    '',
    wrap76(a.data.toString('base64')),
    `--${boundary}--`,
    '',
  ].join('\r\n');
}

/** A raw message (CRLF line endings). See MessageSpec for the knobs. */
export function makeMessage(spec: MessageSpec = {}): Buffer {
  let text = crlf(spec.body ?? 'Hello,\n\nthis is a test message.\n');
  if (!text.endsWith('\r\n')) text += '\r\n';
  let messageId: string | null;
  if (spec.messageId === undefined) {
    const digest = createHash('sha256')
      .update(
        JSON.stringify([
          spec.from,
          spec.to,
          spec.subject,
          spec.date?.toISOString(),
          text,
          spec.size,
        ]),
      )
      .update(spec.attachment?.data ?? Buffer.alloc(0))
      .digest('hex');
    messageId = `<${digest.slice(0, 24)}@corpus.autoport.test>`;
  } else {
    messageId = spec.messageId;
  }
  const base = Buffer.byteLength(assemble(spec, messageId, text));
  if (spec.size !== undefined && spec.size > base) {
    text += fillerText(spec.size - base, spec.seed ?? seedOf(spec.subject ?? 'filler'));
  }
  return Buffer.from(assemble(spec, messageId, text), 'utf8');
}
