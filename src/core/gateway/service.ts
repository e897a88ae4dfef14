/**
 * `autoport proxy` as a service: load the config, open the store and key, start the
 * gateway and its worker pool, then live by signals until told to stop.
 *   SIGTERM / SIGINT: stop accepting, let sessions end within the grace period, stop the
 *                     workers (their accounts go back to captured), flush the store. A
 *                     second signal cuts the grace period short.
 *   SIGHUP:           reload the config and the certificate; sessions and listeners stay
 *                     (a changed listen address needs a restart, and says so).
 * Runs in the foreground: under systemd (Type=notify: readiness.ts) or in tmux alike.
 */
import { join } from 'node:path';
import { EventBus } from '../bus.js';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/types.js';
import { OperatorError } from '../errors.js';
import { attachSessionLog } from '../log/session-log.js';
import { createLogger, type Logger, type LoggerOptions } from '../log/logger.js';
import { loadKeyring } from '../state/crypto.js';
import { openEventLog } from '../state/event-log.js';
import { openStateStore } from '../state/open-store.js';
import { startProxyControl, type ProxyControl } from '../control/attach.js';
import { startGateway, type Gateway, type PlaintextPolicy } from './gateway.js';
import type { LimitsOverride } from '../limits.js';
import { MetricsEndpoint } from '../metrics/endpoint.js';
import { notifyReady } from './readiness.js';
import { eventLogReports, storeReports } from './storage-reports.js';

export interface ProxyServiceOptions {
  configPath?: string;
  log?: LoggerOptions;
  /** run the worker pool (default true) */
  workers?: boolean;
  graceMs?: number;
  plaintextLogin?: PlaintextPolicy;
  limits?: LimitsOverride;
  /** where signals come from (tests pass an EventEmitter) */
  signals?: Pick<NodeJS.Process, 'on' | 'off'>;
  /** called once the listeners are up */
  onReady?: (gateway: Gateway, config: Config) => void;
  /** called with the bound metrics address (config control.metrics), before onReady */
  onMetricsReady?: (address: { host: string; port: number }) => void;
}

export interface ProxyServiceResult {
  /** why it stopped */
  reason: 'signal';
  signal: string;
}

function describeListeners(g: Gateway): string {
  return Object.entries(g.listeners)
    .map(([name, a]) => `${name} ${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`)
    .join(', ');
}

/** A listener that cannot bind, said so the operator knows what to change. */
function listenError(err: unknown): unknown {
  const e = err as NodeJS.ErrnoException;
  if (e.code !== 'EADDRINUSE' && e.code !== 'EACCES') return err;
  return new OperatorError(
    `cannot listen: ${e.message}`,
    e.code === 'EACCES'
      ? 'ports below 1024 need root or CAP_NET_BIND_SERVICE (see deploy/autoport.service)'
      : 'stop what uses the port, or change listen in the config',
    e.code,
    { cause: err },
  );
}

/** SIGHUP: the config and certificate read again; the config in force afterwards. */
function reloadConfig(config: Config, gateway: Gateway, logger: Logger): Config {
  try {
    const next = loadConfig(config.file);
    const moved = JSON.stringify(next.listen) !== JSON.stringify(config.listen);
    const metricsMoved =
      JSON.stringify(next.control?.metrics) !== JSON.stringify(config.control?.metrics);
    gateway.reload(next);
    logger.info('configuration and certificate reloaded', { file: next.file });
    if (moved) logger.warn('listen addresses changed: they take effect after a restart');
    if (metricsMoved) logger.warn('control.metrics changed: it takes effect after a restart');
    // the store and the ledger stay open on what they were started with
    if (next.state !== config.state || next.stateDir !== config.stateDir)
      logger.warn('state or stateDir changed: it takes effect after a restart');
    return next;
  } catch (err) {
    logger.error('reload failed; still running with the previous configuration', {
      err: err instanceof OperatorError ? `${err.message} (${err.hint})` : err,
    });
    return config;
  }
}

/** Listening: said in the log, and to systemd. */
function announce(gateway: Gateway, config: Config, workers: boolean, logger: Logger): void {
  logger.info(`autoport proxy listening: ${describeListeners(gateway)}`, {
    strategy: config.strategy,
    workers: workers ? config.transfer.concurrency : 0,
    state: config.state,
  });
  // Only now, with every listener open, may systemd start what comes After= us.
  void notifyReady({ logger, status: `listening: ${describeListeners(gateway)}` });
}

export async function runProxyService(opts: ProxyServiceOptions = {}): Promise<ProxyServiceResult> {
  const logger: Logger = createLogger({ sink: process.stdout, ...opts.log });
  let config = loadConfig(opts.configPath);
  for (const w of config.warnings ?? []) logger.warn(w);
  if (Object.keys(config.listen).length === 0) {
    throw new OperatorError(
      'the config has no listener',
      'add listen: { imap: "0.0.0.0:143", pop3: "0.0.0.0:110", smtp: "0.0.0.0:25" } to the config',
      'ECONFIG',
    );
  }
  const keyring = loadKeyring(config.keyFile);
  let metrics: MetricsEndpoint | undefined;
  const store = await openStateStore(
    config,
    storeReports(logger, () => metrics?.saveFailed()),
  );
  const bus = new EventBus((err) => logger.error('an event subscriber failed', { err }));
  // Counting starts before the gateway: the worker pool may resume a transfer at start.
  if (config.control?.metrics)
    metrics = new MetricsEndpoint(config.control.metrics, { bus, store, logger });
  const sessionsPath = join(config.logDir, 'sessions.jsonl');
  const sessionLog = await openEventLog(sessionsPath, eventLogReports(logger, sessionsPath));
  const detach = attachSessionLog(bus, { logger, file: sessionLog });
  // The copy engine is loaded only when the worker pool runs.
  const migrator =
    opts.workers === false
      ? undefined
      : await (await import('./migrate.js')).makeMigrateFn(() => config, store, logger);
  let gateway: Gateway;
  try {
    gateway = await startGateway(config, {
      store,
      keyring,
      bus,
      logger,
      migrate: migrator?.migrate,
      sweep: migrator?.sweep,
      plaintextLogin: opts.plaintextLogin,
      limits: opts.limits,
    });
  } catch (err) {
    metrics?.close().catch(() => undefined);
    await Promise.allSettled([migrator?.close(), sessionLog.close(), store.close()]);
    throw listenError(err);
  }
  // Commands reach the proxy here to change accounts while it owns the store.
  let control: ProxyControl;
  try {
    control = await startProxyControl({ config, gateway, store, logger });
  } catch (err) {
    await gateway.stop(0);
    await metrics?.close().catch(() => undefined);
    detach();
    await Promise.allSettled([migrator?.close(), sessionLog.close(), store.close()]);
    throw err;
  }
  if (metrics) {
    try {
      const at = await metrics.listen(gateway);
      const host = at.host.includes(':') ? `[${at.host}]` : at.host;
      logger.info(`metrics on http://${host}:${at.port}/metrics, health on /healthz`);
      opts.onMetricsReady?.(at);
    } catch (err) {
      await control.close();
      await gateway.stop(0);
      await metrics.close();
      detach();
      await Promise.allSettled([migrator?.close(), sessionLog.close(), store.close()]);
      throw err;
    }
  }
  announce(gateway, config, migrator !== undefined, logger);
  opts.onReady?.(gateway, config);

  const signals = opts.signals ?? process;
  const graceMs = opts.graceMs ?? gateway.limits.shutdownGraceMs;
  return new Promise<ProxyServiceResult>((resolve) => {
    let stopping: Promise<void> | undefined;
    const onHup = (): void => {
      config = reloadConfig(config, gateway, logger);
    };
    const onStop = (signal: string): void => {
      if (stopping) {
        logger.warn(`second ${signal}: closing the remaining sessions now`);
        gateway.sessions.closeAll('shutdown');
        return;
      }
      logger.info(
        `${signal}: stopping; open sessions have ${Math.round(graceMs / 1000)} s to finish`,
        { sessions: gateway.sessions.count() },
      );
      metrics?.stopping(`${signal}: open sessions are finishing`);
      stopping = (async () => {
        await control.close();
        await gateway.stop(graceMs);
        await metrics?.close();
        detach();
        await Promise.allSettled([migrator?.close(), sessionLog.close()]);
        await store.close();
        logger.info('stopped; state saved');
      })();
      stopping.finally(() => {
        signals.off('SIGHUP', onHup);
        signals.off('SIGTERM', onTerm);
        signals.off('SIGINT', onInt);
        resolve({ reason: 'signal', signal });
      });
    };
    const onTerm = (): void => onStop('SIGTERM');
    const onInt = (): void => onStop('SIGINT');
    signals.on('SIGHUP', onHup);
    signals.on('SIGTERM', onTerm);
    signals.on('SIGINT', onInt);
  });
}
