/**
 * Where one gateway's series live: a prom-client Registry of its own, never prom-client's
 * global one, so two gateways in one process (the tests run many) never share a series.
 * It carries prom-client's default process_* and nodejs_* series under their usual names,
 * which is what stock Node.js dashboards read.
 *
 * prom-client resets its event-loop delay figures (nodejs_eventloop_lag_*) at each
 * scrape: they cover the time since the previous scrape, whoever made it.
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';

export type Labels = Readonly<Record<string, string>>;
/** what a scrape-time metric reads: one value (no labels) or one value per label set */
export type Read = () => Sample | Promise<Sample>;
type Sample = number | Iterable<readonly [Labels, number]>;

export interface Spec {
  name: string;
  help: string;
  labelNames?: readonly string[];
}

export function gatewayRegistry(opts: { defaults?: boolean } = {}): Registry {
  const r = new Registry();
  if (opts.defaults !== false) collectDefaultMetrics({ register: r });
  return r;
}

/** A read may ask the store (PostgreSQL): prom-client awaits an async collect(). */
async function samples(read: Read): Promise<Iterable<readonly [Labels, number]>> {
  const got = await read();
  return typeof got === 'number' ? [[{}, got]] : got;
}

/** A gauge read at scrape time from something that already keeps the figure. */
export function gaugeFn(r: Registry, spec: Spec, read: Read): void {
  new Gauge({
    ...spec,
    labelNames: [...(spec.labelNames ?? [])],
    registers: [r],
    async collect() {
      const got = await samples(read);
      // a label set that is gone must not linger with its last value
      this.reset();
      for (const [labels, v] of got) this.set(labels, v);
    },
  });
}

/** A counter something else keeps (it only goes up), read at scrape time. */
export function counterFn(r: Registry, spec: Spec, read: Read): void {
  new Counter({
    ...spec,
    labelNames: [...(spec.labelNames ?? [])],
    registers: [r],
    async collect() {
      const got = await samples(read);
      this.reset();
      for (const [labels, v] of got) this.inc(labels, v);
    },
  });
}
