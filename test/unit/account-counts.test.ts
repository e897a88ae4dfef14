import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EventBus } from '../../src/core/bus.js';
import { LiveView } from '../../src/core/control/live.js';
import { LocalCluster } from '../../src/core/state/local-cluster.js';
import { createGatewayMetrics } from '../../src/core/metrics/gateway-metrics.js';
import {
  countAccounts,
  zeroCounts,
  type AccountCounts,
} from '../../src/core/state/account-counts.js';
import type { AccountRecord } from '../../src/core/state/types.js';

const T0 = Date.parse('2026-11-20T12:00:00.000Z');

/** A store that counts how often it is asked for its counts. */
function countingStore(records: AccountRecord[]) {
  let scans = 0;
  return {
    counts: async (): Promise<AccountCounts> => {
      scans++;
      const c = zeroCounts();
      for (const r of records) {
        c.byState[r.state]++;
        if (r.state === 'captured' && r.credentials) c.queue++;
      }
      return c;
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

test('the monitor and the metrics share one count of the store per second', async () => {
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
  const cluster = new LocalCluster('gw1', async () => []);
  const view = new LiveView({ bus, store, cluster, hello, now: clock });
  const metrics = createGatewayMetrics({ bus, store, now: clock, defaultMetrics: false });
  try {
    assert.equal((await view.snapshot()).accounts.migrated, 1);
    assert.match(await metrics.render(), /^autoport_accounts\{state="migrated"\} 1$/m);
    assert.equal(store.scans(), 1, 'the second reader used the first scan');
    now += 1000;
    await metrics.render();
    await view.snapshot();
    assert.equal(store.scans(), 2);
  } finally {
    view.close();
    metrics.close();
  }
});

test('separate stores are counted separately', async () => {
  const a = countingStore([rec('a@x', 'failed')]);
  const b = countingStore([rec('b@x', 'excluded'), rec('c@x', 'excluded')]);
  assert.equal((await countAccounts(a, T0)).byState.failed, 1);
  assert.equal((await countAccounts(b, T0)).byState.excluded, 2);
  assert.equal((await countAccounts(a, T0)).byState.excluded, 0);
  assert.deepEqual([a.scans(), b.scans()], [1, 1]);
});
