/**
 * The header hash that pairs a source POP3 message with its copy, after the manner of
 * Dovecot's pop3-migration plugin: the header block of `TOP n 0` (RFC 1939 7), with the
 * headers a server may add or rewrite on its own left out (mbox status headers, the
 * Return-Path a delivery agent adds) and with what servers are known to mangle evened out
 * (line ends, white space, 8-bit and control bytes: some servers turn them into "?").
 * Bytes of the body never count: TOP may stop anywhere after the header.
 */
import { createHash } from 'node:crypto';

/** header names (lower case) left out of the hash */
const SKIPPED = new Set([
  'content-length',
  'return-path',
  'status',
  'x-imap',
  'x-imapbase',
  'x-keywords',
  'x-message-flag',
  'x-status',
  'x-uid',
  'x-uidl',
  'x-yahoo-newman-property',
]);

const LF = 0x0a;

/** hex digest of the header block at the start of `message` (a TOP n 0 reply or a whole message) */
export function headerHash(message: Buffer): string {
  const h = createHash('sha256');
  let skipping = false;
  let start = 0;
  while (start < message.length) {
    const nl = message.indexOf(LF, start);
    const end = nl < 0 ? message.length : nl;
    const line = message.subarray(start, end);
    start = end + 1;
    if (isBlank(line)) break;
    // RFC 5322 2.2.3: a line starting with white space continues the header above it
    if (line[0] !== 0x20 && line[0] !== 0x09) skipping = SKIPPED.has(headerName(line));
    if (!skipping) h.update(evened(line)).update('\n');
  }
  return h.digest('hex').slice(0, 32);
}

function isBlank(line: Buffer): boolean {
  return line.length === 0 || (line.length === 1 && line[0] === 0x0d);
}

function headerName(line: Buffer): string {
  const colon = line.indexOf(0x3a);
  return line
    .subarray(0, colon < 0 ? line.length : colon)
    .toString('latin1')
    .trim()
    .toLowerCase();
}

function evened(line: Buffer): Buffer {
  const out = Buffer.allocUnsafe(line.length);
  let n = 0;
  for (const b of line) {
    if (b === 0x20 || b === 0x09 || b === 0x0d) continue;
    out[n++] = b < 0x20 || b >= 0x7f ? 0x3f : b;
  }
  return out.subarray(0, n);
}
