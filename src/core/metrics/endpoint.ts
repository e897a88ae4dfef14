/**
 * The metrics endpoint as `autoport proxy` runs it, in two steps: created before the
 * gateway starts (so it counts from the first event, a transfer the worker pool resumes at
 * start included), listening once the gateway's listeners are up. On shutdown /healthz
 * says "stopping" for the grace period, then the endpoint closes.
 */
import type { EventBus } from '../bus.js';
import type { ListenAddress } from '../config/types.js';
import type { Logger } from '../log/logger.js';
import type { SessionRegistry } from '../sessions/registry.js';
import type { StateStore } from '../state/types.js';
import type { WorkerPool } from '../workers/worker-pool.js';
import { createGatewayMetrics, type GatewayMetrics } from './gateway-metrics.js';
import { healthOf, StorePing } from './health.js';
import { startMetricsServer, type MetricsServer } from './http.js';

export { createGatewayMetrics, type GatewayMetrics } from './gateway-metrics.js';
export { healthOf, type Health } from './health.js';
export { startMetricsServer, type MetricsServer } from './http.js';
export { gatewayRegistry } from './registry.js';

export interface MetricsEndpointDeps {
  bus: EventBus;
  /**
   * the store: counts() for the account gauges; status() for health where saves happen in
   * the background (the JSON store). A store without it (PostgreSQL) commits each change
   * before it resolves, so a failure reaches the caller instead of a later save. ping() for
   * /healthz: a store that does not answer (PostgreSQL down) makes the gateway degraded.
   */
  store: Pick<StateStore, 'counts'> &
    Partial<Pick<StateStore, 'ping'>> & {
      status?(): { saves: number; lastError?: string; failures?: number; failingSince?: string };
    };
  logger: Logger;
}

/** What the endpoint reads of the running gateway. */
export interface MetricsSubject {
  readonly sessions: Pick<SessionRegistry, 'count'>;
  readonly workers: Pick<WorkerPool, 'active'> | undefined;
  readonly listeners: Record<string, unknown>;
}

export class MetricsEndpoint {
  readonly metrics: GatewayMetrics;
  private gateway: MetricsSubject | undefined;
  private server: MetricsServer | undefined;
  private stoppingWhy: string | undefined;
  private saveFailures = 0;
  private lastSaveFailureAt: Date | undefined;
  private readonly storePing: StorePing | undefined;

  constructor(
    private readonly at: ListenAddress,
    private readonly deps: MetricsEndpointDeps,
  ) {
    const store = deps.store;
    this.storePing = store.ping ? new StorePing(() => store.ping!()) : undefined;
    this.metrics = createGatewayMetrics({
      bus: deps.bus,
      store: deps.store,
      // The store counts every failed save; onSaveError (saveFailed) only starts an episode.
      ...(deps.store.status
        ? {
            storeStatus: () => {
              const st = deps.store.status!();
              return { ...st, failures: st.failures ?? this.saveFailures };
            },
          }
        : {}),
      splicedSessions: () => this.gateway?.sessions.count() ?? 0,
      activeTransfers: () => this.gateway?.workers?.active.length ?? 0,
    });
  }

  /** the store's onSaveError: /healthz reports the failure until a save works again */
  saveFailed(): void {
    this.saveFailures++;
    this.lastSaveFailureAt = new Date();
  }

  /**
   * The store says whether the last save failed, so /healthz is back to ok after the first
   * good save without anyone telling it; "at" is when the saves began to fail.
   */
  private saveFailure(): { at?: Date; message: string } | undefined {
    const st = this.deps.store.status?.();
    if (st?.lastError === undefined) return undefined;
    const at = st.failingSince === undefined ? this.lastSaveFailureAt : new Date(st.failingSince);
    return { at, message: st.lastError };
  }

  /** Start serving; throws OperatorError when the address cannot be had. */
  async listen(gateway: MetricsSubject): Promise<ListenAddress> {
    this.gateway = gateway;
    this.server = await startMetricsServer(this.at, {
      logger: this.deps.logger,
      metrics: () => this.metrics.render(),
      contentType: this.metrics.contentType,
      health: async () =>
        healthOf({
          stopping: this.stoppingWhy,
          saveFailure: this.saveFailure(),
          storeDown: this.stoppingWhy ? undefined : await this.storePing?.check(),
          listeners: Object.keys(gateway.listeners).length,
          sessions: this.metrics.openSessions(),
          uptimeSeconds: this.metrics.uptimeSeconds(),
        }),
    });
    return this.server.address;
  }

  get address(): ListenAddress | undefined {
    return this.server?.address;
  }

  /** shutdown began: /healthz answers 503 stopping from now on */
  stopping(why: string): void {
    this.stoppingWhy ??= why;
  }

  async close(): Promise<void> {
    this.stopping('stopped');
    await this.server?.close();
    this.metrics.close();
  }
}
