/**
 * The control socket as part of `autoport proxy`: the live view over the gateway's bus, the
 * handlers over its store and worker pool, and the server, started once the gateway is up
 * and closed before it stops (so no command changes accounts while the workers wind down).
 */
import type { EventBus } from '../bus.js';
import type { Config } from '../config/types.js';
import type { Logger } from '../log/logger.js';
import type { SessionRegistry } from '../sessions/registry.js';
import type { StateStore } from '../state/types.js';
import type { WorkerPool } from '../workers/worker-pool.js';
import { makeControlHandlers, makeHello } from './handlers.js';
import { LiveView } from './live.js';
import type { Hello } from './protocol.js';
import { controlSocketPath } from './proxy-or-store.js';
import { startControlServer, type ControlServer } from './server.js';

/** What the control socket uses of the running gateway. */
export interface ControlSubject {
  readonly bus: EventBus;
  readonly sessions: SessionRegistry;
  readonly workers: WorkerPool | undefined;
  readonly listeners: Record<string, { host: string; port: number }>;
}

export interface ProxyControl {
  readonly server: ControlServer;
  readonly live: LiveView;
  readonly hello: Hello;
  close(): Promise<void>;
}

export async function startProxyControl(opts: {
  config: Config;
  gateway: ControlSubject;
  store: StateStore;
  logger: Logger;
}): Promise<ProxyControl> {
  const { gateway, store } = opts;
  const hello = makeHello({ configFile: opts.config.file, listeners: gateway.listeners });
  const live = new LiveView({
    bus: gateway.bus,
    store,
    sessions: gateway.sessions,
    cluster: store.cluster,
    ...(opts.config.node ? { publishMs: opts.config.node.heartbeatSeconds * 1000 } : {}),
    hello: () => hello,
  });
  try {
    const server = await startControlServer({
      socketPath: controlSocketPath(opts.config),
      logger: opts.logger,
      handlers: makeControlHandlers({ store, workers: gateway.workers, live, hello: () => hello }),
    });
    return {
      server,
      live,
      hello,
      async close() {
        await server.close();
        live.close();
      },
    };
  } catch (err) {
    live.close();
    throw err;
  }
}
