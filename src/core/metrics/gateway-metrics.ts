/**
 * The gateway's metrics on a prom-client registry of its own: counters and histograms fed
 * by the event bus as things happen (sessions.ts, smtp.ts, listeners.ts, transfers.ts), gauges read from
 * the store, the session registry and the worker pool when Prometheus scrapes, and
 * prom-client's process_* and nodejs_* series. Every series of our own starts with
 * autoport_.
 */
import type { Registry } from 'prom-client';
import type { EventBus } from '../bus.js';
import type { StateStore } from '../state/types.js';
import { listenerMetrics } from './listeners.js';
import { counterFn, gatewayRegistry, gaugeFn } from './registry.js';
import { sessionMetrics } from './sessions.js';
import { smtpMetrics } from './smtp.js';
import { transferMetrics } from './transfers.js';

export { PROTOCOLS, SESSION_ROUTES, type SessionRoute } from './sessions.js';

export interface StoreHealth {
  /** completed saves since open */
  saves: number;
  /** failed saves since open (each is retried) */
  failures: number;
  /** set while the last save failed */
  lastError?: string;
}

export interface GatewayMetricsDeps {
  bus: EventBus;
  store: Pick<StateStore, 'counts'>;
  /** the JSON store's status() and failed saves, for the state_* metrics */
  storeStatus?: () => StoreHealth;
  /** spliced sessions (SessionRegistry.count) */
  splicedSessions?: () => number;
  /** accounts the worker pool is moving now (WorkerPool.active) */
  activeTransfers?: () => number;
  /** when the gateway started (default now) */
  startedAt?: number;
  now?: () => number;
  /** prom-client's process_* and nodejs_* series (default true) */
  defaultMetrics?: boolean;
}

export interface GatewayMetrics {
  readonly registry: Registry;
  /** the Content-Type of render()'s text */
  readonly contentType: string;
  /** sessions open now on every listener, before login included */
  openSessions(): number;
  uptimeSeconds(): number;
  /** the exposition text */
  render(): Promise<string>;
  /** unsubscribe from the bus */
  close(): void;
}

export function createGatewayMetrics(deps: GatewayMetricsDeps): GatewayMetrics {
  const now = deps.now ?? Date.now;
  const startedAt = deps.startedAt ?? now();
  const r = gatewayRegistry({ defaults: deps.defaultMetrics });
  const sessions = sessionMetrics(r, deps.bus, deps.splicedSessions);
  const off = [
    ...sessions.off,
    ...smtpMetrics(r, deps.bus),
    ...listenerMetrics(r, deps.bus),
    ...transferMetrics(r, { ...deps, now }),
  ];
  if (deps.storeStatus) storeMetrics(r, deps.storeStatus);
  // A start time, not an uptime: Prometheus' convention (time() - it is the uptime), and
  // it tells a restart apart from a counter reset.
  gaugeFn(
    r,
    {
      name: 'autoport_start_time_seconds',
      help: 'When the gateway started, in seconds since the Unix epoch.',
    },
    () => startedAt / 1000,
  );
  return {
    registry: r,
    contentType: r.contentType,
    openSessions: sessions.open,
    uptimeSeconds: () => Math.max(0, now() - startedAt) / 1000,
    render: () => r.metrics(),
    close() {
      for (const f of off.splice(0)) f();
    },
  };
}

function storeMetrics(r: Registry, status: () => StoreHealth): void {
  counterFn(
    r,
    { name: 'autoport_state_saves_total', help: 'Saves of the state file since start.' },
    () => status().saves,
  );
  counterFn(
    r,
    {
      name: 'autoport_state_save_failures_total',
      help: 'Saves of the state file that failed since start (each is retried).',
    },
    () => status().failures,
  );
  gaugeFn(
    r,
    {
      name: 'autoport_state_save_failing',
      help: '1 while the last save of the state file failed.',
    },
    () => (status().lastError === undefined ? 0 : 1),
  );
}
