/**
 * Client sessions and logins, from the bus: what is open now and where it is routed, what
 * opened and closed, logins by result, and how long the backend took to check a password.
 */
import { Counter, Histogram, type Registry } from 'prom-client';
import type { EventBus, SessionProtocol } from '../bus.js';
import { LOGIN_CHECK_BUCKETS } from './buckets.js';
import { gaugeFn } from './registry.js';

export const PROTOCOLS: readonly SessionProtocol[] = ['imap', 'pop3', 'smtp'];
/** where a session is: none until a login is routed */
export const SESSION_ROUTES = ['none', 'source', 'destination', 'refuse'] as const;
export type SessionRoute = (typeof SESSION_ROUTES)[number];

export interface SessionMetrics {
  /** sessions open now on every listener, before login included */
  open(): number;
  off: Array<() => void>;
}

export function sessionMetrics(r: Registry, bus: EventBus, spliced?: () => number): SessionMetrics {
  const open = openSessions(r, bus);
  if (spliced)
    gaugeFn(
      r,
      {
        name: 'autoport_sessions_spliced',
        help: 'Sessions handed over to a backend (IMAP and POP3), logins being set up included.',
      },
      spliced,
    );
  return { open: open.size, off: [...open.off, ...closedSessions(r, bus), ...logins(r, bus)] };
}

function openSessions(r: Registry, bus: EventBus): { size(): number; off: Array<() => void> } {
  const open = new Map<string, { protocol: SessionProtocol; route: SessionRoute }>();
  const opened = new Counter({
    name: 'autoport_sessions_opened_total',
    help: 'Client connections accepted, by protocol.',
    labelNames: ['protocol'],
    registers: [r],
  });
  for (const protocol of PROTOCOLS) opened.inc({ protocol }, 0);
  gaugeFn(
    r,
    {
      name: 'autoport_sessions_open',
      help: 'Client sessions open now, by protocol and where they are routed (none: not logged in yet).',
      labelNames: ['protocol', 'route'],
    },
    () => {
      const n = new Map<string, number>();
      for (const s of open.values()) {
        const k = `${s.protocol} ${s.route}`;
        n.set(k, (n.get(k) ?? 0) + 1);
      }
      return PROTOCOLS.flatMap((protocol) =>
        SESSION_ROUTES.map(
          (route) => [{ protocol, route }, n.get(`${protocol} ${route}`) ?? 0] as const,
        ),
      );
    },
  );
  return {
    size: () => open.size,
    off: [
      bus.on('session.opened', (e) => {
        open.set(e.session, { protocol: e.protocol, route: 'none' });
        opened.inc({ protocol: e.protocol });
      }),
      bus.on('session.route', (e) => {
        // SMTP routes each transaction; the session shows its latest route.
        const s = open.get(e.session);
        if (s) s.route = e.target;
      }),
      bus.on('session.closed', (e) => void open.delete(e.session)),
    ],
  };
}

function closedSessions(r: Registry, bus: EventBus): Array<() => void> {
  const closed = new Counter({
    name: 'autoport_sessions_closed_total',
    help: 'Client sessions ended, by protocol and why.',
    labelNames: ['protocol', 'reason'],
    registers: [r],
  });
  const bytes = new Counter({
    name: 'autoport_session_bytes_total',
    help: 'Bytes of client sessions (in: from the client), counted when a session ends.',
    labelNames: ['protocol', 'direction'],
    registers: [r],
  });
  // A session that ends with reason 'error' met a bug in the gateway (sessions/client-connection.ts
  // fault()): closed alone, logged with its id, counted here so an alert can fire.
  const faults = new Counter({
    name: 'autoport_session_faults_total',
    help: 'Client connections closed because the gateway met a bug handling them, by protocol.',
    labelNames: ['protocol'],
    registers: [r],
  });
  for (const protocol of PROTOCOLS) faults.inc({ protocol }, 0);
  return [
    bus.on('session.closed', (e) => {
      closed.inc({ protocol: e.protocol, reason: e.reason });
      if (e.reason === 'error') faults.inc({ protocol: e.protocol });
      bytes.inc({ protocol: e.protocol, direction: 'in' }, Math.max(0, e.bytesIn));
      bytes.inc({ protocol: e.protocol, direction: 'out' }, Math.max(0, e.bytesOut));
    }),
  ];
}

function logins(r: Registry, bus: EventBus): Array<() => void> {
  const total = new Counter({
    name: 'autoport_logins_total',
    help: 'Login attempts by protocol and result; outcome says why one was refused.',
    labelNames: ['protocol', 'result', 'outcome'],
    registers: [r],
  });
  for (const protocol of PROTOCOLS) {
    total.inc({ protocol, result: 'ok', outcome: '' }, 0);
    total.inc({ protocol, result: 'refused', outcome: 'auth-failed' }, 0);
  }
  // Not zeroed: a histogram series is 14 lines, and most protocol/side pairs never occur.
  const check = new Histogram({
    name: 'autoport_login_check_seconds',
    help: 'Time a backend took to answer the login that checked a client password, by protocol, backend side and login result.',
    labelNames: ['protocol', 'side', 'result'],
    buckets: LOGIN_CHECK_BUCKETS,
    registers: [r],
  });
  return [
    bus.on('session.login', (e) => {
      total.inc({
        protocol: e.protocol,
        result: e.result,
        outcome: e.result === 'ok' ? '' : (e.outcome ?? 'unknown'),
      });
      if (e.check)
        check.observe(
          { protocol: e.protocol, side: e.check.side, result: e.result },
          Math.max(0, e.check.ms) / 1000,
        );
    }),
  ];
}
