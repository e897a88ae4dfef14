/**
 * What the worker pool's unit tests share: a WorkerPool over a real JSON store in a temp
 * folder (stopped, closed and removed when the test ends), a capture() that seals the
 * password as the gateway does, the events of the bus, and waiting for a condition.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { EventBus, type GatewayEvent } from '../../src/core/bus.js';
import { resolveLimits } from '../../src/core/limits.js';
import { silentLogger } from '../../src/core/log/logger.js';
import { SessionRegistry } from '../../src/core/sessions/registry.js';
import { generateKeyFile, loadKeyring, seal } from '../../src/core/state/crypto.js';
import { openJsonStore, type JsonStore } from '../../src/core/state/json-store.js';
import type { StateStore } from '../../src/core/state/types.js';
import { WorkerPool, type MigrateFn, type WorkerDeps } from '../../src/core/workers/worker-pool.js';

export interface PoolSetup {
  migrate: MigrateFn;
  /** default 1 */
  concurrency?: number;
  /** default 20 */
  workerPollMs?: number;
  /** the store the pool is given, made from the JSON store (e.g. behind a stand-in cluster) */
  store?: (json: JsonStore) => StateStore;
  /** the rest of the pool's dependencies (leaseMs, orphansEveryMs) */
  deps?: Pick<WorkerDeps, 'leaseMs' | 'orphansEveryMs'>;
}

export async function poolSetup(t: TestContext, opts: PoolSetup) {
  const dir = mkdtempSync(join(tmpdir(), 'ap-worker-'));
  const json = await openJsonStore(join(dir, 'state.json'), { saveDelayMs: 60_000 });
  const store = opts.store?.(json) ?? json;
  await generateKeyFile(join(dir, 'k.key'));
  const keyring = loadKeyring(join(dir, 'k.key'));
  const bus = new EventBus();
  const events: GatewayEvent[] = [];
  bus.onAny((e) => events.push(e));
  const pool = new WorkerPool({
    store,
    keyring,
    bus,
    logger: silentLogger,
    sessions: new SessionRegistry(),
    migrate: opts.migrate,
    concurrency: () => opts.concurrency ?? 1,
    limits: resolveLimits({ workerPollMs: opts.workerPollMs ?? 20, sessionQuietMaxWaitMs: 0 }),
    ...opts.deps,
  });
  t.after(async () => {
    await pool.stop();
    await json.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const capture = async (address: string): Promise<void> =>
    void (await store.upsert(address, {
      state: 'captured',
      credentials: seal(keyring, 'pw', address),
    }));
  const finished = (address: string) =>
    events.find(
      (e): e is Extract<GatewayEvent, { type: 'transfer.finished' }> =>
        e.type === 'transfer.finished' && e.address === address,
    );
  return { store, bus, events, pool, capture, finished };
}

export async function until(
  what: string,
  f: () => boolean | Promise<boolean>,
  ms = 5000,
): Promise<void> {
  const end = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
