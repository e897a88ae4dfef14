/**
 * A strict reader of the Prometheus text format 0.0.4 for tests: it throws on any line it
 * does not understand, on a sample before its TYPE line, and on a series written twice,
 * so a test that reads a value also checks that the whole exposition is well formed.
 */

export interface ParsedSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  samples: ParsedSample[];
  help: Map<string, string>;
  types: Map<string, string>;
  /** the value of the series with exactly these labels; undefined when absent */
  get(name: string, labels?: Record<string, string>): number | undefined;
  /** the sum over every series of `name` whose labels include `match` */
  sum(name: string, match?: Record<string, string>): number;
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const SAMPLE = new RegExp(`^(${NAME})(\\{(.*)\\})? (\\S+)( -?\\d+)?$`);

function unescape(s: string, chars: string): string {
  return s.replace(/\\(.)/g, (m, c: string) => {
    if (c === 'n') return '\n';
    if (chars.includes(c)) return c;
    throw new Error(`bad escape ${m}`);
  });
}

function parseLabels(text: string, line: string): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < text.length) {
    const m = /^([a-zA-Z_][a-zA-Z0-9_]*)="/.exec(text.slice(i));
    if (!m) throw new Error(`bad label at ${i}: ${line}`);
    i += m[0].length;
    let raw = '';
    for (;;) {
      const ch = text[i];
      if (ch === undefined) throw new Error(`unterminated label value: ${line}`);
      if (ch === '\n') throw new Error(`raw line feed in a label value: ${line}`);
      if (ch === '\\') {
        raw += ch + (text[i + 1] ?? '');
        i += 2;
        continue;
      }
      i++;
      if (ch === '"') break;
      raw += ch;
    }
    if (m[1]! in out) throw new Error(`label ${m[1]} twice: ${line}`);
    out[m[1]!] = unescape(raw, '\\"');
    if (text[i] === ',') i++;
    else if (i < text.length) throw new Error(`expected , at ${i}: ${line}`);
  }
  return out;
}

function parseValue(v: string): number {
  if (v === '+Inf') return Infinity;
  if (v === '-Inf') return -Infinity;
  if (v === 'NaN') return NaN;
  const n = Number(v);
  if (v.trim() === '' || Number.isNaN(n)) throw new Error(`bad value ${v}`);
  return n;
}

function key(name: string, labels: Record<string, string>): string {
  return `${name}${JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)))}`;
}

/** The family a sample belongs to (summary/histogram suffixes are not used here). */
function familyOf(name: string, types: Map<string, string>): string | undefined {
  return types.has(name) ? name : undefined;
}

export function parseExposition(text: string): Exposition {
  if (text !== '' && !text.endsWith('\n')) throw new Error('exposition must end with a line feed');
  const samples: ParsedSample[] = [];
  const help = new Map<string, string>();
  const types = new Map<string, string>();
  const seen = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let m: RegExpExecArray | null;
    if ((m = new RegExp(`^# HELP (${NAME}) (.*)$`).exec(line))) {
      if (help.has(m[1]!)) throw new Error(`HELP twice for ${m[1]}`);
      help.set(m[1]!, unescape(m[2]!, '\\'));
    } else if (
      (m = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`).exec(line))
    ) {
      if (types.has(m[1]!)) throw new Error(`TYPE twice for ${m[1]}`);
      types.set(m[1]!, m[2]!);
    } else if (line.startsWith('#')) {
      continue;
    } else if ((m = SAMPLE.exec(line))) {
      const name = m[1]!;
      if (!familyOf(name, types)) throw new Error(`sample before its TYPE line: ${line}`);
      if (types.get(name) === 'counter' && !name.endsWith('_total'))
        throw new Error(`counter without _total: ${name}`);
      const labels = m[3] === undefined ? {} : parseLabels(m[3], line);
      const k = key(name, labels);
      if (seen.has(k)) throw new Error(`series twice: ${line}`);
      const value = parseValue(m[4]!);
      seen.set(k, value);
      samples.push({ name, labels, value });
    } else {
      throw new Error(`unparsable line: ${JSON.stringify(line)}`);
    }
  }
  return {
    samples,
    help,
    types,
    get: (name, labels = {}) => seen.get(key(name, labels)),
    sum: (name, match = {}) =>
      samples
        .filter(
          (s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v),
        )
        .reduce((a, s) => a + s.value, 0),
  };
}
