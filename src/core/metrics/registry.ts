/**
 * Counters and gauges with labels, and the Prometheus text exposition format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/): `# HELP` and `# TYPE`
 * before each family, label values escaped (backslash, double quote, line feed), label
 * names in the order the metric declared them. A gauge or counter can also be computed at
 * scrape time from a callback, for values something else already keeps (the store, the
 * process).
 *
 * Small on purpose: no histograms, no timestamps, no OpenMetrics. A wrong name or label
 * set is a bug in the caller and throws.
 */

export type Labels = Readonly<Record<string, string>>;
export type Sample = readonly [labels: Labels, value: number];
export type MetricType = 'counter' | 'gauge';

/** what a callback metric returns: one value (no labels) or one sample per label set */
export type Collect = () => number | Iterable<Sample>;

export interface MetricSpec {
  name: string;
  help: string;
  /** label names, in the order they are written */
  labels?: readonly string[];
}

export const TEXT_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** Go's ParseFloat reads these; JSON-style numbers otherwise. */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

abstract class Family {
  readonly labelNames: readonly string[];

  constructor(
    readonly type: MetricType,
    readonly name: string,
    readonly help: string,
    labels: readonly string[] = [],
  ) {
    if (!METRIC_NAME.test(name)) throw new Error(`invalid metric name ${JSON.stringify(name)}`);
    // Prometheus' own convention, and what its client libraries enforce for 0.0.4
    if (type === 'counter' && !name.endsWith('_total'))
      throw new Error(`counter ${name} must end in _total`);
    for (const l of labels) {
      if (!LABEL_NAME.test(l) || l.startsWith('__'))
        throw new Error(`invalid label name ${JSON.stringify(l)} on ${name}`);
    }
    if (new Set(labels).size !== labels.length) throw new Error(`duplicate label on ${name}`);
    this.labelNames = labels;
  }

  /** label values in declared order; throws on a missing or unknown label */
  protected values(labels: Labels): string[] {
    const keys = Object.keys(labels);
    if (keys.length !== this.labelNames.length || keys.some((k) => !this.labelNames.includes(k)))
      throw new Error(
        `${this.name} takes labels {${this.labelNames.join(',')}}, got {${keys.join(',')}}`,
      );
    return this.labelNames.map((n) => {
      const v = labels[n];
      if (typeof v !== 'string') throw new Error(`label ${n} of ${this.name} is not a string`);
      return v;
    });
  }

  abstract samples(): Array<[values: string[], value: number]>;

  render(): string {
    let out = `# HELP ${this.name} ${escapeHelp(this.help)}\n# TYPE ${this.name} ${this.type}\n`;
    for (const [values, value] of this.samples()) {
      const labels = values.length
        ? `{${values.map((v, i) => `${this.labelNames[i]}="${escapeLabelValue(v)}"`).join(',')}}`
        : '';
      out += `${this.name}${labels} ${formatValue(value)}\n`;
    }
    return out;
  }
}

/** Series kept here, changed by events. */
abstract class Stored extends Family {
  private readonly series = new Map<string, { values: string[]; value: number }>();

  constructor(type: MetricType, spec: MetricSpec) {
    super(type, spec.name, spec.help, spec.labels);
    // a metric without labels has exactly one series, there from the start
    if (this.labelNames.length === 0) this.init({});
  }

  protected entry(labels: Labels): { values: string[]; value: number } {
    const values = this.values(labels);
    const key = JSON.stringify(values);
    let e = this.series.get(key);
    if (!e) this.series.set(key, (e = { values, value: 0 }));
    return e;
  }

  /** Create a series at 0, so it is scraped before its first event (rate() needs that). */
  init(labels: Labels): this {
    this.entry(labels);
    return this;
  }

  get(labels: Labels = {}): number {
    return this.series.get(JSON.stringify(this.values(labels)))?.value ?? 0;
  }

  samples(): Array<[string[], number]> {
    return [...this.series.values()]
      .sort((a, b) => compareValues(a.values, b.values))
      .map((e) => [e.values, e.value]);
  }
}

function compareValues(a: string[], b: string[]): number {
  for (let i = 0; i < a.length; i++) {
    if (a[i]! < b[i]!) return -1;
    if (a[i]! > b[i]!) return 1;
  }
  return 0;
}

export class Counter extends Stored {
  constructor(spec: MetricSpec) {
    super('counter', spec);
  }

  inc(labels: Labels = {}, by = 1): void {
    if (!(by >= 0) || !Number.isFinite(by))
      throw new Error(`${this.name}: a counter only goes up (got ${by})`);
    this.entry(labels).value += by;
  }
}

export class Gauge extends Stored {
  constructor(spec: MetricSpec) {
    super('gauge', spec);
  }

  set(labels: Labels, value: number): void {
    this.entry(labels).value = value;
  }

  inc(labels: Labels = {}, by = 1): void {
    this.entry(labels).value += by;
  }

  dec(labels: Labels = {}, by = 1): void {
    this.entry(labels).value -= by;
  }
}

/** Computed at each scrape; samples come out in the order the callback gives them. */
class Computed extends Family {
  constructor(
    type: MetricType,
    spec: MetricSpec,
    private readonly collect: Collect,
  ) {
    super(type, spec.name, spec.help, spec.labels);
  }

  samples(): Array<[string[], number]> {
    const got = this.collect();
    if (typeof got === 'number') {
      if (this.labelNames.length) throw new Error(`${this.name} has labels: return samples`);
      return [[[], got]];
    }
    return [...got].map(([labels, value]) => [this.values(labels), value]);
  }
}

export class Registry {
  private readonly families = new Map<string, Family>();

  private add<F extends Family>(f: F): F {
    if (this.families.has(f.name)) throw new Error(`metric ${f.name} registered twice`);
    this.families.set(f.name, f);
    return f;
  }

  counter(spec: MetricSpec): Counter {
    return this.add(new Counter(spec));
  }

  gauge(spec: MetricSpec): Gauge {
    return this.add(new Gauge(spec));
  }

  /** a gauge read at scrape time */
  gaugeFn(spec: MetricSpec, collect: Collect): void {
    this.add(new Computed('gauge', spec, collect));
  }

  /** a counter something else keeps (it must only go up), read at scrape time */
  counterFn(spec: MetricSpec, collect: Collect): void {
    this.add(new Computed('counter', spec, collect));
  }

  /** The whole registry in the text format, families in registration order. */
  render(): string {
    let out = '';
    for (const f of this.families.values()) out += f.render();
    return out;
  }
}
