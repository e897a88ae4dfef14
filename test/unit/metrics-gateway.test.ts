/**
 * The gateway's metrics from scripted bus events: exact counter values, sessions by route,
 * histograms of login checks, SMTP relays, transfers and account locks, transfer progress
 * counted once (events are cumulative per folder), accounts by state from the store with a
 * short cache, and what /healthz decides.
 */
import assert from 'node:assert/strict';
import { zeroCounts } from '../../src/core/state/account-counts.js';
import { describe, it } from 'node:test';
import { EventBus, type GatewayEvent, type SessionProtocol } from '../../src/core/bus.js';
import {
  LOCK_BUCKETS,
  LOGIN_CHECK_BUCKETS,
  SMTP_RELAY_BUCKETS,
  TRANSFER_BUCKETS,
} from '../../src/core/metrics/buckets.js';
import { createGatewayMetrics } from '../../src/core/metrics/gateway-metrics.js';
import { healthOf, StorePing } from '../../src/core/metrics/health.js';
import type { AccountRecord, AccountState } from '../../src/core/state/types.js';
import { parseExposition, type Exposition } from '../support/prometheus.js';

const at = '2026-01-01T00:00:00.000Z';
/** `at` plus so many seconds */
const later = (seconds: number): string => new Date(Date.parse(at) + seconds * 1000).toISOString();

/** the cumulative buckets a histogram with these bounds has after observing `values` */
function bucketsWith(bounds: readonly number[], ...values: number[]): Array<[number, number]> {
  return [...bounds, Infinity].map((le) => [le, values.filter((v) => v <= le).length]);
}

function opened(session: string, protocol: SessionProtocol): GatewayEvent {
  return {
    type: 'session.opened',
    at,
    session,
    protocol,
    listener: protocol,
    client: { address: '127.0.0.1', port: 5000 },
    tls: false,
  };
}

function closed(
  session: string,
  protocol: SessionProtocol,
  bytesIn = 0,
  bytesOut = 0,
): GatewayEvent {
  return {
    type: 'session.closed',
    at,
    session,
    protocol,
    reason: 'client-logout',
    bytesIn,
    bytesOut,
    durationMs: 10,
  };
}

function progress(
  address: string,
  folder: string,
  phase: 'scan' | 'copy' | 'done',
  copied: number,
  copiedBytes: number,
): GatewayEvent {
  return {
    type: 'transfer.progress',
    at,
    address,
    folder,
    phase,
    toCopy: 10,
    toCopyBytes: 10_000,
    copied,
    copiedBytes,
    failed: 0,
  };
}

function record(address: string, state: AccountState, credentials = false): AccountRecord {
  return {
    address,
    state,
    updatedAt: at,
    errors: [],
    folders: {},
    ...(credentials ? { credentials: { kid: 'k', iv: '', tag: '', data: '' } } : {}),
  };
}

function setup(records: AccountRecord[] = []) {
  const bus = new EventBus((err) => {
    throw err;
  });
  let t = 1_000_000;
  let lists = 0;
  const m = createGatewayMetrics({
    bus,
    store: {
      counts: async () => {
        lists++;
        const c = zeroCounts();
        for (const r of records) {
          c.byState[r.state]++;
          if (r.state === 'captured' && r.credentials) c.queue++;
        }
        return c;
      },
    },
    storeStatus: () => ({ saves: 7, failures: 1 }),
    splicedSessions: () => 2,
    activeTransfers: () => 1,
    startedAt: t - 90_500,
    now: () => t,
    defaultMetrics: false,
  });
  return {
    bus,
    m,
    scrape: async (): Promise<Exposition> => parseExposition(await m.render()),
    advance: (ms: number) => void (t += ms),
    lists: () => lists,
  };
}

describe('gateway metrics from bus events', () => {
  it('tracks sessions by protocol and route, logins by result and outcome', async () => {
    const { bus, scrape, m } = setup();
    bus.emit(opened('s1', 'imap'));
    bus.emit(opened('s2', 'imap'));
    bus.emit(opened('s3', 'pop3'));
    bus.emit(opened('s4', 'smtp'));
    bus.emit({
      type: 'session.login',
      at,
      session: 's1',
      protocol: 'imap',
      user: 'a@x',
      mechanism: 'LOGIN',
      result: 'refused',
      outcome: 'auth-failed',
      check: { side: 'source', ms: 2040 },
    });
    bus.emit({
      type: 'session.login',
      at,
      session: 's1',
      protocol: 'imap',
      user: 'a@x',
      mechanism: 'LOGIN',
      result: 'refused',
      outcome: 'too-many-attempts',
    });
    bus.emit({
      type: 'session.route',
      at,
      session: 's2',
      protocol: 'imap',
      user: 'b@x',
      target: 'destination',
      reason: 'migrated',
    });
    bus.emit({
      type: 'session.login',
      at,
      session: 's2',
      protocol: 'imap',
      user: 'b@x',
      mechanism: 'PLAIN',
      result: 'ok',
      check: { side: 'destination', ms: 30 },
    });
    // SMTP routes per transaction: the session shows the latest
    for (const target of ['source', 'destination', 'source'] as const)
      bus.emit({
        type: 'session.route',
        at,
        session: 's4',
        protocol: 'smtp',
        user: 'c@x',
        target,
        reason: 'first-login',
      });
    let x = await scrape();
    assert.equal(x.get('autoport_sessions_open', { protocol: 'imap', route: 'none' }), 1);
    assert.equal(x.get('autoport_sessions_open', { protocol: 'imap', route: 'destination' }), 1);
    assert.equal(x.get('autoport_sessions_open', { protocol: 'pop3', route: 'none' }), 1);
    assert.equal(x.get('autoport_sessions_open', { protocol: 'smtp', route: 'source' }), 1);
    assert.equal(x.get('autoport_sessions_open', { protocol: 'smtp', route: 'destination' }), 0);
    assert.equal(x.sum('autoport_sessions_open'), 4);
    assert.equal(m.openSessions(), 4);
    assert.equal(x.get('autoport_sessions_opened_total', { protocol: 'imap' }), 2);
    assert.equal(x.get('autoport_sessions_opened_total', { protocol: 'pop3' }), 1);
    assert.equal(x.get('autoport_sessions_opened_total', { protocol: 'smtp' }), 1);
    const login = (protocol: string, result: string, outcome: string) =>
      x.get('autoport_logins_total', { protocol, result, outcome });
    assert.equal(login('imap', 'ok', ''), 1);
    assert.equal(login('imap', 'refused', 'auth-failed'), 1);
    assert.equal(login('imap', 'refused', 'too-many-attempts'), 1);
    assert.equal(login('pop3', 'ok', ''), 0);
    assert.equal(x.get('autoport_sessions_spliced'), 2);
    // one check per login that asked a backend (the brakes' refusal asked none)
    const check = (side: string, result: string) =>
      x.histogram('autoport_login_check_seconds', { protocol: 'imap', side, result });
    assert.deepEqual(check('source', 'refused'), {
      count: 1,
      sum: 2.04,
      buckets: bucketsWith(LOGIN_CHECK_BUCKETS, 2.04),
    });
    assert.equal(check('destination', 'ok')?.count, 1);
    assert.equal(check('destination', 'ok')?.sum, 0.03);
    assert.equal(x.sum('autoport_login_check_seconds_count'), 2);

    bus.emit(closed('s1', 'imap', 100, 2000));
    bus.emit(closed('s2', 'imap', 50, 30));
    bus.emit(closed('s2', 'imap', 50, 30)); // a repeat must not make the gauge negative
    x = await scrape();
    assert.equal(x.sum('autoport_sessions_open', { protocol: 'imap' }), 0);
    assert.equal(
      x.get('autoport_sessions_closed_total', { protocol: 'imap', reason: 'client-logout' }),
      3,
    );
    assert.equal(x.get('autoport_session_bytes_total', { protocol: 'imap', direction: 'in' }), 200);
    assert.equal(
      x.get('autoport_session_bytes_total', { protocol: 'imap', direction: 'out' }),
      2060,
    );
  });

  it('counts SMTP messages by route and reply class, their bytes and relay time', async () => {
    const { bus, scrape } = setup();
    const msg = (route: 'source' | 'destination', code: number, bytes: number): GatewayEvent => ({
      type: 'smtp.message',
      at,
      session: 's',
      listener: 'smtp',
      route,
      code,
      accepted: code < 300,
      recipients: 1,
      bytes,
      durationMs: bytes * 10,
    });
    bus.emit(msg('source', 250, 1000));
    bus.emit(msg('source', 250, 24));
    bus.emit(msg('destination', 452, 300));
    bus.emit(msg('destination', 554, 7));
    bus.emit(msg('destination', 250, 1));
    const x = await scrape();
    const n = (route: string, cls: string) =>
      x.get('autoport_smtp_messages_total', { route, class: cls });
    assert.equal(n('source', '2xx'), 2);
    assert.equal(n('destination', '2xx'), 1);
    assert.equal(n('destination', '4xx'), 1);
    assert.equal(n('destination', '5xx'), 1);
    assert.equal(n('source', '4xx'), undefined);
    assert.equal(x.get('autoport_smtp_bytes_total', { route: 'source' }), 1024);
    assert.equal(x.get('autoport_smtp_bytes_total', { route: 'destination' }), 308);
    const relay = (route: string) => x.histogram('autoport_smtp_relay_seconds', { route });
    assert.deepEqual(relay('source'), {
      count: 2,
      sum: 10.24,
      buckets: bucketsWith(SMTP_RELAY_BUCKETS, 10, 0.24),
    });
    assert.equal(relay('destination')?.count, 3);
  });

  it('counts bytes and messages moved once, transfer and lock times', async () => {
    const { bus, scrape } = setup();
    bus.emit({ type: 'account.captured', at, address: 'a@x', state: 'captured' });
    bus.emit({ type: 'transfer.started', at, address: 'a@x', attempt: 1 });
    bus.emit({ type: 'transfer.started', at: later(2), address: 'b@x', attempt: 1 });
    bus.emit(progress('a@x', 'INBOX', 'scan', 0, 0));
    bus.emit(progress('a@x', 'INBOX', 'copy', 3, 300));
    bus.emit(progress('a@x', 'INBOX', 'copy', 3, 300)); // the same numbers again
    bus.emit(progress('b@x', 'INBOX', 'copy', 1, 1000)); // same folder, other account
    bus.emit(progress('a@x', 'INBOX', 'copy', 5, 520));
    bus.emit(progress('a@x', 'Sent', 'copy', 2, 40));
    bus.emit(progress('a@x', 'INBOX', 'done', 5, 520));
    bus.emit(progress('a@x', 'Sent', 'done', 4, 90));
    bus.emit({
      type: 'transfer.finished',
      at: later(90),
      address: 'a@x',
      ok: true,
      durationMs: 1500,
      lock: { at, ms: 400, passes: 1, copied: 0, bytes: 0, flags: 0, expunged: 0 },
    });
    // a second run of b (retry) starts its counts from zero again; the first failed in
    // its pre-copy: it never locked the account
    bus.emit({
      type: 'transfer.finished',
      at: later(3),
      address: 'b@x',
      ok: false,
      durationMs: 500,
    });
    bus.emit({ type: 'transfer.started', at: later(100), address: 'b@x', attempt: 2 });
    bus.emit(progress('b@x', 'INBOX', 'copy', 2, 50));
    bus.emit(progress('b@x', 'INBOX', 'done', 2, 50));
    bus.emit({
      type: 'transfer.finished',
      at: later(700),
      address: 'b@x',
      ok: true,
      durationMs: 1000,
      lock: { at, ms: 250, passes: 1, copied: 0, bytes: 0, flags: 0, expunged: 0 },
    });
    // stopped by the gateway's shutdown: its own result, not a failure
    bus.emit({ type: 'transfer.started', at, address: 'c@x', attempt: 1 });
    bus.emit({
      type: 'transfer.finished',
      at,
      address: 'c@x',
      ok: false,
      aborted: true,
      durationMs: 1000,
    });
    // a transfer whose start these metrics never saw still reports its switch
    bus.emit({
      type: 'transfer.finished',
      at,
      address: 'd@x',
      ok: true,
      durationMs: 20_000,
      lock: { at, ms: 1200, passes: 1, copied: 0, bytes: 0, flags: 0, expunged: 0 },
    });
    const x = await scrape();
    assert.equal(x.get('autoport_transfer_messages_total'), 5 + 4 + 1 + 2);
    assert.equal(x.get('autoport_transfer_bytes_total'), 520 + 90 + 1000 + 50);
    assert.equal(x.get('autoport_transfers_started_total'), 4);
    assert.equal(x.get('autoport_transfers_finished_total', { result: 'ok' }), 3);
    assert.equal(x.get('autoport_transfers_finished_total', { result: 'failed' }), 1);
    assert.equal(x.get('autoport_transfers_finished_total', { result: 'aborted' }), 1);
    const took = (result: string) => x.histogram('autoport_transfer_duration_seconds', { result });
    assert.deepEqual(took('ok'), {
      count: 3,
      sum: 22.5,
      buckets: bucketsWith(TRANSFER_BUCKETS, 1.5, 1, 20),
    });
    assert.equal(took('failed')?.sum, 0.5);
    assert.equal(took('aborted')?.count, 1);
    // the switch of each move that got that far, as the copy engine timed it; the whole
    // run (transfer.started to transfer.finished) is not a lock
    assert.deepEqual(x.histogram('autoport_account_lock_seconds'), {
      count: 3,
      sum: 0.4 + 0.25 + 1.2,
      buckets: bucketsWith(LOCK_BUCKETS, 0.4, 0.25, 1.2),
    });
    assert.equal(x.get('autoport_accounts_captured_total'), 1);
    assert.equal(x.get('autoport_transfers_running'), 1);
  });

  it('reports every account state and the queue from one cached scan of the store', async () => {
    const records = [
      record('a@x', 'captured', true),
      record('b@x', 'captured', true),
      record('c@x', 'captured'), // no credentials: not in the queue
      record('d@x', 'migrated'),
      record('e@x', 'failed'),
    ];
    const { scrape, advance, lists } = setup(records);
    let x = await scrape();
    assert.deepEqual(
      x.samples.filter((s) => s.name === 'autoport_accounts').map((s) => [s.labels.state, s.value]),
      [
        ['unknown', 0],
        ['captured', 3],
        ['transferring', 0],
        ['migrated', 1],
        ['failed', 1],
        ['excluded', 0],
      ],
    );
    assert.equal(x.get('autoport_transfer_queue'), 2);
    assert.equal(lists(), 1, 'both gauges come from one scan');
    records.push(record('f@x', 'migrated'));
    advance(500);
    x = await scrape();
    assert.equal(x.get('autoport_accounts', { state: 'migrated' }), 1, 'cached within 1 s');
    assert.equal(lists(), 1);
    advance(600);
    x = await scrape();
    assert.equal(x.get('autoport_accounts', { state: 'migrated' }), 2);
    assert.equal(lists(), 2);
  });

  it('exposes state saves and the start time', async () => {
    const { scrape, m } = setup();
    const x = await scrape();
    assert.equal(x.get('autoport_state_saves_total'), 7);
    assert.equal(x.types.get('autoport_state_saves_total'), 'counter');
    assert.equal(x.get('autoport_state_save_failures_total'), 1);
    assert.equal(x.get('autoport_state_save_failing'), 0);
    assert.equal(x.get('autoport_start_time_seconds'), (1_000_000 - 90_500) / 1000);
    assert.equal(m.uptimeSeconds(), 90.5);
    assert.equal(x.get('process_cpu_seconds_total'), undefined, 'defaults off here');
  });

  it("carries prom-client's process_ and nodejs_ series beside its own", async () => {
    const m = createGatewayMetrics({
      bus: new EventBus(),
      store: { counts: async () => zeroCounts() },
    });
    try {
      const x = parseExposition(await m.render());
      assert.ok(x.get('process_resident_memory_bytes')! > 1e6);
      assert.equal(x.types.get('nodejs_eventloop_lag_p99_seconds'), 'gauge');
      assert.equal(x.get('autoport_sessions_opened_total', { protocol: 'imap' }), 0);
      assert.equal(m.contentType, 'text/plain; version=0.0.4; charset=utf-8');
    } finally {
      m.close();
    }
  });

  it('stops counting once closed', async () => {
    const { bus, m, scrape } = setup();
    m.close();
    bus.emit(opened('s1', 'imap'));
    assert.equal((await scrape()).get('autoport_sessions_opened_total', { protocol: 'imap' }), 0);
  });
});

describe('/healthz decision', () => {
  const base = { listeners: 3, sessions: 4, uptimeSeconds: 12.7 };
  it('is ok while accepting and saving', () => {
    assert.deepEqual(healthOf(base), {
      status: 'ok',
      listeners: 3,
      sessions: 4,
      uptimeSeconds: 12,
    });
  });
  it('says stopping during shutdown, degraded while the state cannot be saved', () => {
    assert.deepEqual(healthOf({ ...base, stopping: 'SIGTERM' }), {
      status: 'stopping',
      why: 'SIGTERM',
    });
    const h = healthOf({
      ...base,
      saveFailure: { at: new Date(at), message: 'ENOSPC: no space left on device' },
    });
    assert.deepEqual(h, {
      status: 'degraded',
      why: `saving the state failed at ${at}: ENOSPC: no space left on device`,
    });
    assert.equal(healthOf({ ...base, listeners: 0 }).status, 'degraded');
  });
  it('says degraded with why while the store does not answer', () => {
    const h = healthOf({
      ...base,
      storeDown: { at: new Date(at), message: 'connect ECONNREFUSED 127.0.0.1:5432' },
    });
    assert.deepEqual(h, {
      status: 'degraded',
      why: `the state store does not answer since ${at}: connect ECONNREFUSED 127.0.0.1:5432`,
    });
    assert.equal(
      healthOf({ ...base, stopping: 'SIGTERM', storeDown: h as never }).status,
      'stopping',
    );
  });
});

describe('/healthz ping of the store', () => {
  it('pings at most once per second, one ping in flight for concurrent askers', async () => {
    let t = 0;
    let pings = 0;
    let fail: Error | undefined;
    let release: () => void = () => undefined;
    const ping = () =>
      new Promise<void>((resolve, reject) => {
        pings++;
        release = () => (fail ? reject(fail) : resolve());
      });
    const p = new StorePing(ping, 1_000, () => t);
    const storm = Array.from({ length: 50 }, () => p.check());
    assert.equal(pings, 1, 'fifty askers, one ping');
    release();
    assert.deepEqual(await Promise.all(storm), Array(50).fill(undefined));
    t = 999;
    assert.equal(await p.check(), undefined);
    assert.equal(pings, 1, 'the answer is reused within a second');
    t = 1_000;
    fail = new Error('no answer within 2000 ms');
    const down = p.check();
    assert.equal(pings, 2);
    release();
    const first = await down;
    assert.equal(first?.message, 'no answer within 2000 ms');
    t = 2_500;
    const again = p.check();
    release();
    assert.equal((await again)?.at, first?.at, 'down since the first failed ping');
    assert.equal(pings, 3);
    t = 4_000;
    fail = undefined;
    const back = p.check();
    release();
    assert.equal(await back, undefined, 'ok again once the store answers');
  });
});
