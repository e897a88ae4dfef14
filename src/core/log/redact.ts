/**
 * Redaction at the logger (style.md habit 12): whatever a call site passes, passwords,
 * SASL payloads and PASS arguments never reach a log line. Two nets:
 *   - fields whose name says "secret" are replaced whatever they hold;
 *   - string values that look like protocol lines have their secret parts cut
 *     (IMAP LOGIN / AUTHENTICATE, POP3 PASS / AUTH, SMTP AUTH), SASL PLAIN payloads are
 *     cut wherever they appear, and in fields that hold wire lines (line, command, ...)
 *     any lone base64 token is cut, since that is what a SASL continuation looks like.
 */

export const REDACTED = '[redacted]';

const SECRET_KEY =
  /pass(word|wd)?$|^pass|secret|credential|token|authorization|sasl|payload|^auth$|^key$|private/i;

const WIRE_RULES: Array<[RegExp, string]> = [
  // IMAP: [tag] LOGIN user password (user quoted, literal or atom)
  [
    /(^|\s)((?:\S+\s+)?LOGIN\s+(?:"(?:[^"\\]|\\.)*"|\{\d+\+?\}|\S+))\s+\S[\s\S]*$/i,
    `$1$2 ${REDACTED}`,
  ],
  // IMAP AUTHENTICATE mech initial-response; SMTP/POP3 AUTH mech initial-response
  [/(^|\s)((?:\S+\s+)?(?:AUTHENTICATE|AUTH)\s+\S+)\s+\S[\s\S]*$/i, `$1$2 ${REDACTED}`],
  // POP3 PASS (the rest of the line is the password, spaces included)
  [/(^|\s)(PASS|APOP\s+\S+)\s+\S[\s\S]*$/i, `$1$2 ${REDACTED}`],
];

/** A line that is only base64, as a SASL response is. */
const BASE64_LINE = /^[A-Za-z0-9+/]{4,}={0,2}$/;

/** Fields that carry protocol lines as received: any lone base64 there may be a password. */
const WIRE_KEY = /^(line|command|raw|input|data|args?|response|challenge)$/i;

/** A SASL PLAIN message: base64 of authzid NUL authcid NUL password (RFC 4616). */
function looksLikePlain(s: string): boolean {
  if (!BASE64_LINE.test(s) || s.length % 4 !== 0) return false;
  return Buffer.from(s, 'base64').includes(0);
}

export function redactString(s: string, wire = false): string {
  let out = s;
  for (const [re, rep] of WIRE_RULES) out = out.replace(re, rep);
  const t = out.trim();
  if ((wire && BASE64_LINE.test(t)) || looksLikePlain(t)) return REDACTED;
  return out;
}

export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

/** A deep copy of `value` that is safe to log. Errors become {name, message, code}. */
export function redact(value: unknown, depth = 0, wire = false): unknown {
  if (depth > 6) return '[deep]';
  if (typeof value === 'string') return redactString(value, wire);
  if (value === null || typeof value !== 'object') return value;
  if (Buffer.isBuffer(value)) return `[${value.length} bytes]`;
  if (value instanceof Error) {
    const e = value as Error & { code?: unknown };
    const out: Record<string, unknown> = { name: e.name, message: redactString(e.message) };
    if (e.code !== undefined) out.code = e.code;
    return out;
  }
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1, wire));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] =
      isSecretKey(k) && v !== undefined && v !== null && v !== false
        ? REDACTED
        : redact(v, depth + 1, WIRE_KEY.test(k));
  }
  return out;
}
