/**
 * A strict reader of the Prometheus text format 0.0.4 for tests: it throws on any line it
 * does not understand, on a sample before its TYPE line or away from its family's other
 * lines, on a series written twice, and on a histogram whose buckets are not cumulative,
 * lack +Inf, or disagree with its _count, so a test that reads a value also checks that
 * the whole exposition is well formed.
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
  /** one series of a histogram family; undefined when absent */
  histogram(name: string, labels?: Record<string, string>): HistogramSeries | undefined;
}

export interface HistogramSeries {
  count: number;
  sum: number;
  /** cumulative counts by upper bound, +Inf last */
  buckets: Array<[le: number, count: number]>;
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

/**
 * As Prometheus reads it, with Go's strconv.ParseFloat: NaN and Inf in any case (prom-client
 * writes "Nan" for an empty event-loop histogram).
 */
function parseValue(v: string): number {
  if (/^nan$/i.test(v)) return NaN;
  const inf = /^([+-]?)inf(inity)?$/i.exec(v);
  if (inf) return inf[1] === '-' ? -Infinity : Infinity;
  const n = Number(v);
  if (v.trim() === '' || Number.isNaN(n)) throw new Error(`bad value ${v}`);
  return n;
}

function key(name: string, labels: Record<string, string>): string {
  return `${name}${JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)))}`;
}

/** The family a sample belongs to: its own name, or a histogram's or summary's by suffix. */
function familyOf(name: string, types: Map<string, string>): string | undefined {
  const type = types.get(name);
  if (type !== undefined) return type === 'histogram' ? undefined : name;
  const m = /^(.*)_(bucket|sum|count)$/.exec(name);
  if (!m) return undefined;
  const base = types.get(m[1]!);
  if (base === 'histogram' || (base === 'summary' && m[2] !== 'bucket')) return m[1];
  return undefined;
}

function withoutLe(labels: Record<string, string>): Record<string, string> {
  const { le: _le, ...rest } = labels;
  return rest;
}

function histogramOf(
  samples: ParsedSample[],
  name: string,
  labels: Record<string, string>,
): HistogramSeries | undefined {
  const k = key(name, labels);
  const mine = (suffix: string) =>
    samples.filter((s) => s.name === name + suffix && key(name, withoutLe(s.labels)) === k);
  const count = mine('_count')[0]?.value;
  const sum = mine('_sum')[0]?.value;
  if (count === undefined && sum === undefined) return undefined;
  const buckets = mine('_bucket').map((s): [number, number] => {
    const le = s.labels.le;
    if (le === undefined) throw new Error(`${name}_bucket without le`);
    return [parseValue(le), s.value];
  });
  const where = `${name}${JSON.stringify(labels)}`;
  if (count === undefined || sum === undefined) throw new Error(`${where}: _sum or _count missing`);
  for (let i = 1; i < buckets.length; i++) {
    if (!(buckets[i]![0] > buckets[i - 1]![0])) throw new Error(`${where}: le out of order`);
    if (buckets[i]![1] < buckets[i - 1]![1]) throw new Error(`${where}: buckets not cumulative`);
  }
  const inf = buckets.at(-1);
  if (inf?.[0] !== Infinity) throw new Error(`${where}: no +Inf bucket`);
  if (inf[1] !== count) throw new Error(`${where}: +Inf bucket ${inf[1]} but _count ${count}`);
  return { count, sum, buckets };
}

/** Every histogram series must be whole: checked once per parse, so a reader cannot skip it. */
function checkHistograms(samples: ParsedSample[], types: Map<string, string>): void {
  for (const [name, type] of types) {
    if (type !== 'histogram') continue;
    const sets = new Map<string, Record<string, string>>();
    for (const s of samples)
      if (s.name.startsWith(`${name}_`) && familyOf(s.name, types) === name)
        sets.set(key(name, withoutLe(s.labels)), withoutLe(s.labels));
    for (const labels of sets.values()) histogramOf(samples, name, labels);
  }
}

export function parseExposition(text: string): Exposition {
  if (text !== '' && !text.endsWith('\n')) throw new Error('exposition must end with a line feed');
  const samples: ParsedSample[] = [];
  const help = new Map<string, string>();
  const types = new Map<string, string>();
  const seen = new Map<string, number>();
  /** the family of the last TYPE line: a family's samples follow it, all together */
  let current: string | undefined;
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
      current = m[1]!;
    } else if (line.startsWith('#')) {
      continue;
    } else if ((m = SAMPLE.exec(line))) {
      const name = m[1]!;
      const family = familyOf(name, types);
      if (!family) throw new Error(`sample before its TYPE line: ${line}`);
      if (family !== current) throw new Error(`sample away from its family: ${line}`);
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
  checkHistograms(samples, types);
  return {
    samples,
    help,
    types,
    histogram: (name, labels = {}) => histogramOf(samples, name, labels),
    get: (name, labels = {}) => seen.get(key(name, labels)),
    sum: (name, match = {}) =>
      samples
        .filter(
          (s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v),
        )
        .reduce((a, s) => a + s.value, 0),
  };
}
