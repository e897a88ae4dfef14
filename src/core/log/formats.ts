/**
 * The three shapes of a log line. Each takes fields that redact() has already cleaned and
 * returns one line ending in "\n".
 *   json    one object per line, for the journal, jq and log shippers;
 *   logfmt  key=value pairs, for plain files and grep;
 *   human   a terminal: time of day, level, message, then the fields.
 * In json and logfmt a value can never spill into the next key: strings are quoted and
 * escaped, keys are restricted to a safe alphabet. The fail2ban filter
 * (deploy/fail2ban/filter.d/autoport.conf) relies on that, so a user name cannot forge a
 * failed login of another address.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export type LogFields = Record<string, unknown>;

export type LogFormat = 'json' | 'logfmt' | 'human';

export interface LogRecord {
  level: LogLevel;
  /** ISO 8601, UTC */
  time: string;
  msg: string;
  fields: LogFields;
}

export function formatJson(r: LogRecord): string {
  return `${JSON.stringify({ time: r.time, level: r.level, msg: r.msg, ...r.fields })}\n`;
}

function humanValue(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  return JSON.stringify(v);
}

export function formatHuman(level: LogLevel, time: string, msg: string, fields: LogFields): string {
  const kv = Object.entries(fields)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${humanValue(v)}`)
    .join(' ');
  return `${time.slice(11, 23)} ${level.toUpperCase().padEnd(5)} ${msg}${kv ? `  ${kv}` : ''}\n`;
}

/** A logfmt key: anything outside [A-Za-z0-9_.-] would let a key end early. */
function logfmtKey(k: string): string {
  const safe = k.replace(/[^A-Za-z0-9_.-]/g, '_');
  return safe === '' ? '_' : safe;
}

/** Bare when nothing in it can end the value, else a JSON string (quotes, \n escaped). */
function logfmtString(s: string): string {
  return /^[^\s"=\\]+$/.test(s) ? s : JSON.stringify(s);
}

/**
 * Nested objects (an error's name, message, code) become dotted keys, err.code=EIO, which
 * grep and most logfmt readers handle; arrays stay one quoted JSON value.
 */
function logfmtPairs(prefix: string, v: unknown, out: string[], depth: number): void {
  if (v === undefined) return;
  if (v !== null && typeof v === 'object' && !Array.isArray(v) && depth < 4) {
    for (const [k, inner] of Object.entries(v as Record<string, unknown>))
      logfmtPairs(`${prefix}.${logfmtKey(k)}`, inner, out, depth + 1);
    return;
  }
  const text =
    typeof v === 'string'
      ? logfmtString(v)
      : typeof v === 'number' || typeof v === 'boolean' || v === null
        ? String(v)
        : logfmtString(JSON.stringify(v) ?? String(v));
  out.push(`${prefix}=${text}`);
}

export function formatLogfmt(r: LogRecord): string {
  const out = [`time=${r.time}`, `level=${r.level}`, `msg=${logfmtString(r.msg)}`];
  for (const [k, v] of Object.entries(r.fields)) logfmtPairs(logfmtKey(k), v, out, 0);
  return `${out.join(' ')}\n`;
}

export function formatLine(format: LogFormat, r: LogRecord): string {
  if (format === 'human') return formatHuman(r.level, r.time, r.msg, r.fields);
  if (format === 'logfmt') return formatLogfmt(r);
  return formatJson(r);
}
