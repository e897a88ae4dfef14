/**
 * The Prometheus text format 0.0.4 as the registry writes it: HELP/TYPE lines, escaping,
 * label order, number formatting, and the mistakes it refuses.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  escapeHelp,
  escapeLabelValue,
  formatValue,
  Registry,
} from '../../src/core/metrics/registry.js';
import { parseExposition } from '../support/prometheus.js';

describe('metrics registry: text exposition 0.0.4', () => {
  it('writes HELP and TYPE before each family, labels in declared order, series sorted', () => {
    const r = new Registry();
    const c = r.counter({
      name: 'x_requests_total',
      help: 'Requests.',
      labels: ['method', 'code'],
    });
    // object key order differs from the declared order on purpose
    c.inc({ code: '200', method: 'GET' }, 2);
    c.inc({ code: '404', method: 'GET' });
    c.inc({ method: 'HEAD', code: '200' });
    r.gauge({ name: 'x_temperature', help: 'Now.' }).set({}, -1.5);
    r.gaugeFn({ name: 'x_queue', help: 'Waiting.', labels: ['kind'] }, () => [
      [{ kind: 'b' }, 3],
      [{ kind: 'a' }, 0],
    ]);
    r.counterFn({ name: 'x_cpu_seconds_total', help: 'CPU.' }, () => 0.25);
    assert.equal(
      r.render(),
      [
        '# HELP x_requests_total Requests.',
        '# TYPE x_requests_total counter',
        'x_requests_total{method="GET",code="200"} 2',
        'x_requests_total{method="GET",code="404"} 1',
        'x_requests_total{method="HEAD",code="200"} 1',
        '# HELP x_temperature Now.',
        '# TYPE x_temperature gauge',
        'x_temperature -1.5',
        '# HELP x_queue Waiting.',
        '# TYPE x_queue gauge',
        // a callback's samples keep the callback's order
        'x_queue{kind="b"} 3',
        'x_queue{kind="a"} 0',
        '# HELP x_cpu_seconds_total CPU.',
        '# TYPE x_cpu_seconds_total counter',
        'x_cpu_seconds_total 0.25',
        '',
      ].join('\n'),
    );
  });

  it('escapes backslash, double quote and line feed in label values; backslash and line feed in HELP', () => {
    assert.equal(escapeLabelValue('a\\b"c\nd'), 'a\\\\b\\"c\\nd');
    assert.equal(escapeHelp('one\\two\nthree "q"'), 'one\\\\two\\nthree "q"');
    const r = new Registry();
    r.counter({ name: 'x_total', help: 'Line one\nline \\ two', labels: ['v'] }).inc({
      v: 'C:\\dir "x"\ny',
    });
    const text = r.render();
    assert.match(text, /^# HELP x_total Line one\\nline \\\\ two$/m);
    assert.match(text, /^x_total\{v="C:\\\\dir \\"x\\"\\ny"\} 1$/m);
    // and a parser that follows the format gets the original value back
    const parsed = parseExposition(text);
    assert.equal(parsed.get('x_total', { v: 'C:\\dir "x"\ny' }), 1);
    assert.equal(parsed.help.get('x_total'), 'Line one\nline \\ two');
  });

  it('formats special values as Go reads them', () => {
    assert.equal(formatValue(NaN), 'NaN');
    assert.equal(formatValue(Infinity), '+Inf');
    assert.equal(formatValue(-Infinity), '-Inf');
    assert.equal(formatValue(1e21), '1e+21');
    assert.equal(formatValue(0.1), '0.1');
    assert.equal(formatValue(-0), '0');
  });

  it('exposes a metric without labels at 0 from the start, and init() makes labelled zeros', () => {
    const r = new Registry();
    r.counter({ name: 'a_total', help: 'A.' });
    r.counter({ name: 'b_total', help: 'B.', labels: ['k'] }).init({ k: 'x' });
    r.counter({ name: 'c_total', help: 'C.', labels: ['k'] });
    const lines = r.render().split('\n');
    assert.ok(lines.includes('a_total 0'));
    assert.ok(lines.includes('b_total{k="x"} 0'));
    assert.ok(lines.includes('# TYPE c_total counter'));
    assert.ok(!lines.some((l) => l.startsWith('c_total')));
  });

  it('refuses what would make an invalid exposition', () => {
    const r = new Registry();
    assert.throws(() => r.counter({ name: 'requests', help: '' }), /must end in _total/);
    assert.throws(() => r.gauge({ name: '1bad', help: '' }), /invalid metric name/);
    assert.throws(() => r.gauge({ name: 'g', help: '', labels: ['__x'] }), /invalid label name/);
    assert.throws(() => r.gauge({ name: 'g', help: '', labels: ['a-b'] }), /invalid label name/);
    const c = r.counter({ name: 'ok_total', help: '', labels: ['a'] });
    assert.throws(() => r.counter({ name: 'ok_total', help: '' }), /registered twice/);
    assert.throws(() => c.inc({}), /takes labels \{a\}/);
    assert.throws(() => c.inc({ a: 'x', b: 'y' }), /takes labels/);
    assert.throws(() => c.inc({ a: 'x' }, -1), /only goes up/);
    assert.throws(() => c.inc({ a: 'x' }, NaN), /only goes up/);
    assert.equal(c.get({ a: 'x' }), 0);
  });
});
