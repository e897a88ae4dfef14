/**
 * The registry a gateway writes to: prom-client's, one per gateway, with the standard
 * process_* and nodejs_* series; the scrape-time helpers; and the strict test parser
 * refusing what Prometheus would refuse (so the other metrics tests can rely on it).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Counter, register as globalRegistry } from 'prom-client';
import { counterFn, gatewayRegistry, gaugeFn } from '../../src/core/metrics/registry.js';
import { parseExposition } from '../support/prometheus.js';

describe('gateway registry (prom-client)', () => {
  it('has the standard process_ and nodejs_ series under their usual names, well formed', async () => {
    const r = gatewayRegistry();
    const x = parseExposition(await r.metrics());
    assert.ok(x.get('process_resident_memory_bytes')! > 1e6);
    assert.ok(x.get('process_cpu_seconds_total')! > 0);
    const start = x.get('process_start_time_seconds')!;
    assert.ok(Math.abs(start - (Date.now() / 1000 - process.uptime())) < 5, String(start));
    assert.ok(x.get('nodejs_heap_size_used_bytes')! > 0);
    assert.equal(x.types.get('nodejs_eventloop_lag_p99_seconds'), 'gauge');
    assert.equal(x.types.get('nodejs_gc_duration_seconds'), 'histogram');
    assert.ok(x.samples.some((s) => s.name === 'nodejs_version_info'));
    assert.equal(r.contentType, 'text/plain; version=0.0.4; charset=utf-8');
    assert.equal((await gatewayRegistry({ defaults: false }).metrics()).trim(), '');
  });

  it('keeps each gateway apart from another and from the global registry', async () => {
    const a = gatewayRegistry({ defaults: false });
    const b = gatewayRegistry({ defaults: false });
    const spec = { name: 'x_things_total', help: 'Things.' };
    new Counter({ ...spec, registers: [a] }).inc(2);
    new Counter({ ...spec, registers: [b] }).inc(5);
    assert.equal(parseExposition(await a.metrics()).get('x_things_total'), 2);
    assert.equal(parseExposition(await b.metrics()).get('x_things_total'), 5);
    assert.equal(globalRegistry.getSingleMetric('x_things_total'), undefined);
    // the default series too: two gateways in one process both get them
    await Promise.all([gatewayRegistry().metrics(), gatewayRegistry().metrics()]);
  });

  it('reads scrape-time series afresh, drops a label set that is gone, escapes label values', async () => {
    const r = gatewayRegistry({ defaults: false });
    let rows: Array<[Record<string, string>, number]> = [
      [{ kind: 'C:\\dir "x"\ny' }, 3],
      [{ kind: 'b' }, 1],
    ];
    gaugeFn(r, { name: 'x_queue', help: 'Waiting.', labelNames: ['kind'] }, () => rows);
    let saves = 4;
    counterFn(r, { name: 'x_saves_total', help: 'Saves.' }, () => saves);
    let x = parseExposition(await r.metrics());
    assert.equal(x.get('x_queue', { kind: 'C:\\dir "x"\ny' }), 3);
    assert.equal(x.get('x_saves_total'), 4);
    assert.equal(x.types.get('x_saves_total'), 'counter');
    rows = [[{ kind: 'b' }, 2]];
    saves = 6;
    x = parseExposition(await r.metrics());
    assert.deepEqual(
      x.samples.map((s) => [s.name, s.labels, s.value]),
      [
        ['x_queue', { kind: 'b' }, 2],
        ['x_saves_total', {}, 6],
      ],
    );
  });
});

describe('strict exposition parser', () => {
  const head = '# HELP h_seconds H.\n# TYPE h_seconds histogram\n';
  it('reads a whole histogram series', () => {
    const x = parseExposition(
      `${head}h_seconds_bucket{le="0.1",k="a"} 1\nh_seconds_bucket{le="1",k="a"} 3\nh_seconds_bucket{le="+Inf",k="a"} 4\nh_seconds_sum{k="a"} 7.5\nh_seconds_count{k="a"} 4\n`,
    );
    assert.deepEqual(x.histogram('h_seconds', { k: 'a' }), {
      count: 4,
      sum: 7.5,
      buckets: [
        [0.1, 1],
        [1, 3],
        [Infinity, 4],
      ],
    });
    assert.equal(x.histogram('h_seconds', { k: 'b' }), undefined);
  });

  it('refuses what Prometheus would refuse', () => {
    const bad: Array<[string, RegExp]> = [
      [
        `${head}h_seconds_bucket{le="1"} 3\nh_seconds_bucket{le="+Inf"} 2\nh_seconds_sum 1\nh_seconds_count 2\n`,
        /not cumulative/,
      ],
      [`${head}h_seconds_bucket{le="1"} 3\nh_seconds_sum 1\nh_seconds_count 3\n`, /no \+Inf/],
      [`${head}h_seconds_bucket{le="+Inf"} 3\nh_seconds_sum 1\nh_seconds_count 4\n`, /_count 4/],
      [`${head}h_seconds 3\n`, /before its TYPE/],
      [
        `${head}# TYPE g gauge\ng 1\nh_seconds_bucket{le="+Inf"} 0\nh_seconds_sum 0\nh_seconds_count 0\n`,
        /away from its family/,
      ],
      ['# TYPE c counter\nc 1\n', /without _total/],
      ['# TYPE g gauge\ng 1\ng 2\n', /series twice/],
    ];
    for (const [text, why] of bad) assert.throws(() => parseExposition(text), why, text);
  });
});
