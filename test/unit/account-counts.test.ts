import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EventBus } from '../../src/core/bus.js';
import { LiveView } from '../../src/core/control/live.js';
import { createGatewayMetrics } from '../../src/core/metrics/gateway-metrics.js';
import { countAccounts } from '../../src/core/state/account-counts.js';
import type { AccountRecord } from '../../src/core/state/types.js';

const T0 = Date.parse('2026-11-20T12:00:00.000Z');

function countingStore(records: AccountRecord[]) {
  let scans = 0;
  return {
    list: () => {
      scans++;
      return records;
    },
    scans: () => scans,
  };
}

const rec = (address: string, state: AccountRecord['state']): AccountRecord => ({
  address,
  state,
  updatedAt: new Date(T0).toISOString(),
  errors: [],
  folders: {},
});

test('the monitor and the metrics share one scan of the store per second', async () => {
  const store = countingStore([rec('a@x', 'migrated'), rec('b@x', 'unknown')]);
  let now = T0;
  const clock = () => now;
  const bus = new EventBus();
  const hello = () => ({
    protocol: 1,
    version: '0',
    pid: 1,
    startedAt: '',
    configFile: '',
    listeners: {},
  });
  const view = new LiveView({ bus, store, hello, now: clock });
  const metrics = createGatewayMetrics({ bus, store, now: clock, defaultMetrics: false });
  try {
    assert.equal(view.snapshot().accounts.migrated, 1);
    assert.match(await metrics.render(), /^autoport_accounts\{state="migrated"\} 1$/m);
    assert.equal(store.scans(), 1, 'the second reader used the first scan');
    now += 1000;
    await metrics.render();
    view.snapshot();
    assert.equal(store.scans(), 2);
  } finally {
    view.close();
    metrics.close();
  }
});

test('separate stores are counted separately', () => {
  const a = countingStore([rec('a@x', 'failed')]);
  const b = countingStore([rec('b@x', 'excluded'), rec('c@x', 'excluded')]);
  assert.equal(countAccounts(a, T0).byState.failed, 1);
  assert.equal(countAccounts(b, T0).byState.excluded, 2);
  assert.equal(countAccounts(a, T0).byState.excluded, 0);
  assert.deepEqual([a.scans(), b.scans()], [1, 1]);
});
