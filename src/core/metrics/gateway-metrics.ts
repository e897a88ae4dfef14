/**
 * The gateway's metrics: counters fed by the event bus as things happen, gauges read from
 * the store, the session registry, the worker pool and the process when Prometheus
 * scrapes. Every name starts with autoport_.
 *
 * Bytes and messages moved come from transfer.progress, not transfer.finished: progress
 * counts are cumulative per folder within one run (retries of a folder included), so each
 * event adds only what grew since the last event for that account and folder, and a new
 * run (transfer.started) starts from zero again. That counts what a run copied even when
 * it is aborted or fails halfway, which the finished event cannot tell.
 */
import { monitorEventLoopDelay, performance, type IntervalHistogram } from 'node:perf_hooks';
import type { EventBus, SessionProtocol } from '../bus.js';
import { countAccounts, type AccountCounts } from '../state/account-counts.js';
import { ACCOUNT_STATES, type StateStore } from '../state/types.js';
import { Registry, type Sample } from './registry.js';

export const PROTOCOLS: readonly SessionProtocol[] = ['imap', 'pop3', 'smtp'];
/** where a session is: none until a login is routed */
export const SESSION_ROUTES = ['none', 'source', 'destination', 'refuse'] as const;
export type SessionRoute = (typeof SESSION_ROUTES)[number];

/** event-loop delay is reported over a window of at least this long */
const LOOP_WINDOW_MS = 30_000;

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
  store: Pick<StateStore, 'list'>;
  /** the JSON store's status() and failed saves, for the state_* metrics */
  storeStatus?: () => StoreHealth;
  /** spliced sessions (SessionRegistry.count) */
  splicedSessions?: () => number;
  /** accounts the worker pool is moving now (WorkerPool.active) */
  activeTransfers?: () => number;
  /** when the gateway started (default now) */
  startedAt?: number;
  now?: () => number;
  /** measure event-loop delay (default true) */
  eventLoop?: boolean;
}

export interface GatewayMetrics {
  readonly registry: Registry;
  /** sessions open now on every listener, before login included */
  openSessions(): number;
  uptimeSeconds(): number;
  /** the exposition text */
  render(): string;
  /** unsubscribe from the bus, stop measuring */
  close(): void;
}

export function createGatewayMetrics(deps: GatewayMetricsDeps): GatewayMetrics {
  const now = deps.now ?? Date.now;
  const startedAt = deps.startedAt ?? now();
  const r = new Registry();
  const off: Array<() => void> = [];

  // --- sessions -----------------------------------------------------------------------
  const open = new Map<string, { protocol: SessionProtocol; route: SessionRoute }>();
  const opened = r.counter({
    name: 'autoport_sessions_opened_total',
    help: 'Client connections accepted, by protocol.',
    labels: ['protocol'],
  });
  const closed = r.counter({
    name: 'autoport_sessions_closed_total',
    help: 'Client sessions ended, by protocol and why.',
    labels: ['protocol', 'reason'],
  });
  const sessionBytes = r.counter({
    name: 'autoport_session_bytes_total',
    help: 'Bytes of client sessions (in: from the client), counted when a session ends.',
    labels: ['protocol', 'direction'],
  });
  const logins = r.counter({
    name: 'autoport_logins_total',
    help: 'Login attempts by protocol and result; outcome says why one was refused.',
    labels: ['protocol', 'result', 'outcome'],
  });
  // A session that ends with reason 'error' met a bug in the gateway (frontends/connection.ts
  // fault()): closed alone, logged with its id, counted here so an alert can fire.
  const faults = r.counter({
    name: 'autoport_session_faults_total',
    help: 'Client connections closed because the gateway met a bug handling them, by protocol.',
    labels: ['protocol'],
  });
  for (const protocol of PROTOCOLS) {
    opened.init({ protocol });
    faults.init({ protocol });
    logins.init({ protocol, result: 'ok', outcome: '' });
    logins.init({ protocol, result: 'refused', outcome: 'auth-failed' });
  }
  r.gaugeFn(
    {
      name: 'autoport_sessions_open',
      help: 'Client sessions open now, by protocol and where they are routed (none: not logged in yet).',
      labels: ['protocol', 'route'],
    },
    () => {
      const n = new Map<string, number>();
      for (const s of open.values()) {
        const k = `${s.protocol} ${s.route}`;
        n.set(k, (n.get(k) ?? 0) + 1);
      }
      return PROTOCOLS.flatMap((protocol) =>
        SESSION_ROUTES.map((route): Sample => [
          { protocol, route },
          n.get(`${protocol} ${route}`) ?? 0,
        ]),
      );
    },
  );
  if (deps.splicedSessions)
    r.gaugeFn(
      {
        name: 'autoport_sessions_spliced',
        help: 'Sessions handed over to a backend (IMAP and POP3), logins being set up included.',
      },
      deps.splicedSessions,
    );

  off.push(
    deps.bus.on('session.opened', (e) => {
      open.set(e.session, { protocol: e.protocol, route: 'none' });
      opened.inc({ protocol: e.protocol });
    }),
    deps.bus.on('session.route', (e) => {
      // SMTP routes each transaction; the session shows its latest route.
      const s = open.get(e.session);
      if (s) s.route = e.target;
    }),
    deps.bus.on('session.login', (e) => {
      logins.inc({
        protocol: e.protocol,
        result: e.result,
        outcome: e.result === 'ok' ? '' : (e.outcome ?? 'unknown'),
      });
    }),
    deps.bus.on('session.closed', (e) => {
      open.delete(e.session);
      closed.inc({ protocol: e.protocol, reason: e.reason });
      if (e.reason === 'error') faults.inc({ protocol: e.protocol });
      sessionBytes.inc({ protocol: e.protocol, direction: 'in' }, Math.max(0, e.bytesIn));
      sessionBytes.inc({ protocol: e.protocol, direction: 'out' }, Math.max(0, e.bytesOut));
    }),
  );

  // --- SMTP -----------------------------------------------------------------------------
  const smtpMessages = r.counter({
    name: 'autoport_smtp_messages_total',
    help: 'Messages relayed over SMTP, by route and the class of the backend reply to DATA.',
    labels: ['route', 'class'],
  });
  const smtpBytes = r.counter({
    name: 'autoport_smtp_bytes_total',
    help: 'Message bytes streamed to a backend over SMTP, by route (whatever the reply).',
    labels: ['route'],
  });
  for (const route of ['source', 'destination']) {
    smtpMessages.init({ route, class: '2xx' });
    smtpBytes.init({ route });
  }
  off.push(
    deps.bus.on('smtp.message', (e) => {
      smtpMessages.inc({ route: e.route, class: `${Math.trunc(e.code / 100)}xx` });
      smtpBytes.inc({ route: e.route }, Math.max(0, e.bytes));
    }),
  );

  // --- transfers ------------------------------------------------------------------------
  const captured = r.counter({
    name: 'autoport_accounts_captured_total',
    help: 'Accounts whose credentials were captured at a first login.',
  });
  const started = r.counter({
    name: 'autoport_transfers_started_total',
    help: 'Account transfers started (retries included).',
  });
  const finished = r.counter({
    name: 'autoport_transfers_finished_total',
    help: 'Account transfers ended, by result: ok, failed, or aborted by the gateway (shutdown, immediate timeout; resumed later).',
    labels: ['result'],
  });
  finished.init({ result: 'ok' }).init({ result: 'failed' }).init({ result: 'aborted' });
  const transferSeconds = r.counter({
    name: 'autoport_transfer_seconds_total',
    help: 'Time spent in ended transfers; divide by transfers_finished_total for the mean.',
  });
  const movedBytes = r.counter({
    name: 'autoport_transfer_bytes_total',
    help: 'Message bytes copied to the destination by transfers.',
  });
  const movedMessages = r.counter({
    name: 'autoport_transfer_messages_total',
    help: 'Messages copied to the destination by transfers.',
  });
  /** per running account: per folder, the counts of the last progress event */
  const progress = new Map<string, Map<string, { copied: number; bytes: number }>>();
  off.push(
    deps.bus.on('account.captured', () => captured.inc()),
    deps.bus.on('transfer.started', (e) => {
      started.inc();
      progress.set(e.address, new Map());
    }),
    deps.bus.on('transfer.progress', (e) => {
      let folders = progress.get(e.address);
      if (!folders) progress.set(e.address, (folders = new Map()));
      const last = folders.get(e.folder) ?? { copied: 0, bytes: 0 };
      if (e.copied > last.copied) movedMessages.inc({}, e.copied - last.copied);
      if (e.copiedBytes > last.bytes) movedBytes.inc({}, e.copiedBytes - last.bytes);
      folders.set(e.folder, {
        copied: Math.max(last.copied, e.copied),
        bytes: Math.max(last.bytes, e.copiedBytes),
      });
    }),
    deps.bus.on('transfer.finished', (e) => {
      progress.delete(e.address);
      finished.inc({ result: e.ok ? 'ok' : e.aborted ? 'aborted' : 'failed' });
      transferSeconds.inc({}, Math.max(0, e.durationMs) / 1000);
    }),
  );
  if (deps.activeTransfers)
    r.gaugeFn(
      { name: 'autoport_transfers_running', help: 'Accounts being moved now.' },
      deps.activeTransfers,
    );

  const accountCounts = (): AccountCounts => countAccounts(deps.store, now());
  r.gaugeFn(
    {
      name: 'autoport_accounts',
      help: 'Accounts in the state store, by state.',
      labels: ['state'],
    },
    () => {
      const c = accountCounts();
      return ACCOUNT_STATES.map((state): Sample => [{ state }, c.byState[state]]);
    },
  );
  r.gaugeFn(
    {
      name: 'autoport_transfer_queue',
      help: 'Captured accounts waiting for the worker pool.',
    },
    () => accountCounts().queue,
  );

  // --- state store ----------------------------------------------------------------------
  if (deps.storeStatus) {
    const status = deps.storeStatus;
    r.counterFn(
      { name: 'autoport_state_saves_total', help: 'Saves of the state file since start.' },
      () => status().saves,
    );
    r.counterFn(
      {
        name: 'autoport_state_save_failures_total',
        help: 'Saves of the state file that failed since start (each is retried).',
      },
      () => status().failures,
    );
    r.gaugeFn(
      {
        name: 'autoport_state_save_failing',
        help: '1 while the last save of the state file failed.',
      },
      () => (status().lastError === undefined ? 0 : 1),
    );
  }

  // --- process --------------------------------------------------------------------------
  const uptimeSeconds = (): number => Math.max(0, now() - startedAt) / 1000;
  r.gaugeFn(
    {
      name: 'autoport_process_start_time_seconds',
      help: 'When the process started, in seconds since the Unix epoch.',
    },
    () => Math.round(performance.timeOrigin) / 1000,
  );
  r.gaugeFn(
    { name: 'autoport_uptime_seconds', help: 'Seconds since the gateway started.' },
    uptimeSeconds,
  );
  r.gaugeFn(
    { name: 'autoport_process_resident_memory_bytes', help: 'Resident memory of the process.' },
    () => process.memoryUsage.rss(),
  );
  r.gaugeFn(
    { name: 'autoport_process_heap_used_bytes', help: 'V8 heap in use.' },
    () => process.memoryUsage().heapUsed,
  );
  r.counterFn(
    {
      name: 'autoport_process_cpu_seconds_total',
      help: 'CPU time of the process (user and system).',
    },
    () => {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1e6;
    },
  );
  let loop: IntervalHistogram | undefined;
  if (deps.eventLoop !== false) {
    const h = (loop = monitorEventLoopDelay({ resolution: 10 }));
    h.enable();
    let windowStart = now();
    let last: { p99: number; max: number } | undefined;
    const current = (): { p99: number; max: number } =>
      h.count > 0 ? { p99: h.percentile(99) / 1e9, max: h.max / 1e9 } : { p99: 0, max: 0 };
    // The last complete window, so one scraper never resets what another one reads.
    const read = (): { p99: number; max: number } => {
      if (now() - windowStart >= LOOP_WINDOW_MS) {
        last = current();
        h.reset();
        windowStart = now();
      }
      return last ?? current();
    };
    const window = `over the last ${LOOP_WINDOW_MS / 1000} s window`;
    r.gaugeFn(
      {
        name: 'autoport_event_loop_delay_p99_seconds',
        help: `Event-loop delay, 99th percentile ${window}.`,
      },
      () => read().p99,
    );
    r.gaugeFn(
      {
        name: 'autoport_event_loop_delay_max_seconds',
        help: `Longest event-loop delay ${window}.`,
      },
      () => read().max,
    );
  }

  return {
    registry: r,
    openSessions: () => open.size,
    uptimeSeconds,
    render: () => r.render(),
    close() {
      for (const f of off.splice(0)) f();
      loop?.disable();
    },
  };
}
