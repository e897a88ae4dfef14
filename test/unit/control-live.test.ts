/**
 * LiveView: a real EventBus driven with scripted events, a tiny in-memory store, a real
 * SessionRegistry and a fake clock; every test asserts exact snapshot contents.
 */
import assert from 'node:assert/strict';
import { zeroCounts } from '../../src/core/state/account-counts.js';
import { describe, it } from 'node:test';
import { EventBus, type GatewayEvent, type TransferProgress } from '../../src/core/bus.js';
import { LiveView, RATE_WINDOW_MS, type LiveViewDeps } from '../../src/core/control/live.js';
import { ACCOUNT_COUNTS_TTL_MS as ACCOUNTS_TTL_MS } from '../../src/core/state/account-counts.js';
import {
  SNAPSHOT_CLOSED,
  SNAPSHOT_ERRORS,
  SNAPSHOT_MINUTES,
  SNAPSHOT_SESSIONS,
  type Hello,
  type MonitorSnapshot,
} from '../../src/core/control/protocol.js';
import type { Splice } from '../../src/core/sessions/splice.js';
import type { SessionInfo } from '../../src/core/sessions/types.js';
import { SessionRegistry } from '../../src/core/sessions/registry.js';
import {
  NODES_POLL_MS,
  type LiveCluster,
  type PublishedView,
} from '../../src/core/control/peers.js';
import { LocalCluster } from '../../src/core/state/local-cluster.js';
import type { AccountRecord, AccountState, NodeView } from '../../src/core/state/types.js';

const T0 = Date.parse('2026-11-20T12:00:00.000Z');
const HELLO: Hello = {
  protocol: 1,
  version: '0.0.0-test',
  pid: 4242,
  startedAt: '2026-11-20T11:00:00.000Z',
  configFile: '/etc/autoport/autoport.yaml',
  listeners: { imap: { host: '127.0.0.1', port: 1143 } },
};

const SEALED = { kid: 'k1', iv: 'aXY=', tag: 'dGFn', data: 'ZGF0YQ==' };

/** a captured account has a stored password unless `noPassword` */
function rec(address: string, state: AccountState, noPassword = false): AccountRecord {
  const r: AccountRecord = { address, state, updatedAt: iso(T0), errors: [], folders: {} };
  if (state === 'captured' && !noPassword) r.credentials = SEALED;
  return r;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** the store's cluster as the live view sees it: this node gw1, the others scripted */
class FakeCluster implements LiveCluster {
  readonly node: string;
  published: unknown;
  /** what nodes() answers next: a list, or an error to throw */
  answer: NodeView[] | Error = [];
  reads = 0;

  constructor(readonly name = 'gw1') {
    this.node = `${name}:4242:abc`;
  }

  publishView(view: unknown): void {
    this.published = view;
  }

  async nodes(): Promise<NodeView[]> {
    this.reads++;
    if (this.answer instanceof Error) throw this.answer;
    return this.answer;
  }
}

function setup(
  opts: {
    records?: AccountRecord[];
    registry?: SessionRegistry;
    cluster?: FakeCluster;
    live?: Pick<LiveViewDeps, 'publishMs' | 'nodesWaitMs'>;
  } = {},
) {
  let now = T0;
  const bus = new EventBus((err) => {
    throw err;
  });
  const records = opts.records ?? [];
  let scans = 0;
  const store = {
    counts: async () => {
      scans++;
      const c = zeroCounts();
      for (const r of records) {
        c.byState[r.state]++;
        if (r.state === 'captured' && r.credentials) c.queue++;
      }
      return c;
    },
  };
  const cluster = opts.cluster ?? new FakeCluster();
  const view = new LiveView({
    bus,
    store,
    sessions: opts.registry,
    cluster,
    hello: () => HELLO,
    now: () => now,
    ...opts.live,
  });
  const emit = (e: GatewayEvent) => bus.emit(e);
  const at = () => iso(now);
  return {
    bus,
    view,
    cluster,
    records,
    scans: () => scans,
    at,
    advance: (ms: number) => (now += ms),
    now: () => now,
    open: (session: string, protocol: 'imap' | 'pop3' | 'smtp' = 'imap', listener = 'imap') =>
      emit({
        type: 'session.opened',
        at: at(),
        session,
        protocol,
        listener,
        client: { address: `192.0.2.${session.length}`, port: 40000 },
        tls: false,
      }),
    close: (
      session: string,
      reason: 'client-logout' | 'protocol-error' | 'error',
      detail?: string,
    ) =>
      emit({
        type: 'session.closed',
        at: at(),
        session,
        protocol: 'imap',
        reason,
        bytesIn: 10,
        bytesOut: 20,
        durationMs: 5,
        detail,
      }),
    login: (
      session: string,
      user: string,
      result: 'ok' | 'refused',
      protocol: 'imap' | 'pop3' | 'smtp' = 'imap',
    ) =>
      emit({
        type: 'session.login',
        at: at(),
        session,
        protocol,
        user,
        mechanism: 'LOGIN',
        result,
        ...(result === 'refused'
          ? { outcome: 'auth-failed' as const, detail: 'NO [AUTHENTICATIONFAILED]' }
          : {}),
      }),
    route: (
      session: string,
      user: string,
      target: 'source' | 'destination' | 'refuse',
      protocol: 'imap' | 'smtp' = 'imap',
    ) =>
      emit({
        type: 'session.route',
        at: at(),
        session,
        protocol,
        user,
        target,
        reason: 'captured',
      }),
    smtp: (session: string, route: 'source' | 'destination', accepted = true) =>
      emit({
        type: 'smtp.message',
        at: at(),
        session,
        listener: 'smtp',
        route,
        code: accepted ? 250 : 554,
        accepted,
        recipients: 1,
        bytes: 100,
        durationMs: 20,
      }),
    started: (address: string, attempt = 1) =>
      emit({ type: 'transfer.started', at: at(), address, attempt }),
    progress: (
      address: string,
      p: Partial<TransferProgress> & Pick<TransferProgress, 'folder' | 'phase'>,
    ) =>
      emit({
        type: 'transfer.progress',
        at: at(),
        address,
        toCopy: 0,
        toCopyBytes: 0,
        copied: 0,
        copiedBytes: 0,
        failed: 0,
        ...p,
      }),
    finished: (address: string, ok: boolean, detail?: string) =>
      emit({ type: 'transfer.finished', at: at(), address, ok, durationMs: 1, detail }),
  };
}

describe('LiveView sessions', () => {
  it('follows a session from open through TLS, login and route to close', async () => {
    const t = setup();
    t.open('s1');
    const opened = await t.view.snapshot();
    assert.equal(opened.at, iso(T0));
    assert.deepEqual(opened.gateway, HELLO);
    assert.deepEqual(opened.sessions, {
      total: 1,
      byProtocol: { imap: 1, pop3: 0, smtp: 0 },
      list: [
        {
          id: 's1',
          node: 'gw1',
          protocol: 'imap',
          listener: 'imap',
          client: '192.0.2.2',
          tls: false,
          openedAt: iso(T0),
          bytesIn: 0,
          bytesOut: 0,
        },
      ],
    });

    t.advance(1000);
    t.bus.emit({
      type: 'session.tls',
      at: t.at(),
      session: 's1',
      protocol: 'imap',
      version: 'TLSv1.3',
      cipher: 'TLS_AES_128_GCM_SHA256',
    });
    t.login('s1', 'alice@example.org', 'ok');
    t.route('s1', 'alice@example.org', 'source');
    const live = (await t.view.snapshot()).sessions.list[0];
    assert.deepEqual(
      { tls: live?.tls, user: live?.user, route: live?.route },
      { tls: true, user: 'alice@example.org', route: 'source' },
    );

    t.advance(4000);
    t.close('s1', 'client-logout');
    const after = await t.view.snapshot();
    assert.deepEqual(after.sessions, {
      total: 0,
      byProtocol: { imap: 0, pop3: 0, smtp: 0 },
      list: [],
    });
    assert.deepEqual(after.closed, [
      {
        id: 's1',
        node: 'gw1',
        protocol: 'imap',
        listener: 'imap',
        client: '192.0.2.2',
        user: 'alice@example.org',
        route: 'source',
        tls: true,
        openedAt: iso(T0),
        bytesIn: 10,
        bytesOut: 20,
        closedAt: iso(T0 + 5000),
        reason: 'client-logout',
        durationMs: 5,
      },
    ]);
    assert.deepEqual(after.errors, [], 'a normal close is no error');
  });

  it('names a port-25 session by its last recipient, a submission session by its AUTH user', async () => {
    const t = setup();
    t.open('p25', 'smtp', 'smtp');
    t.route('p25', 'a@example.org', 'source', 'smtp');
    t.route('p25', 'b@example.org', 'destination', 'smtp');
    t.open('sub', 'smtp', 'submission');
    t.login('sub', 'carol@example.org', 'ok', 'smtp');
    t.route('sub', 'carol@example.org', 'destination', 'smtp');
    t.route('sub', 'someone@elsewhere.example', 'destination', 'smtp');
    const [sub, p25] = (await t.view.snapshot()).sessions.list;
    assert.deepEqual([p25?.user, p25?.route], ['b@example.org', 'destination']);
    assert.deepEqual([sub?.user, sub?.route], ['carol@example.org', 'destination']);
  });

  it('leaves the route unset when routing refuses', async () => {
    const t = setup();
    t.open('s1');
    t.route('s1', 'x@example.org', 'refuse');
    assert.equal((await t.view.snapshot()).sessions.list[0]?.route, undefined);
  });

  it('lists the newest open sessions first, capped, and counts all of them', async () => {
    const t = setup();
    const n = SNAPSHOT_SESSIONS + 10;
    for (let i = 0; i < n; i++) t.open(`s${i}`, i % 2 ? 'pop3' : 'imap', 'any');
    t.open('m0', 'smtp', 'smtp');
    const s = (await t.view.snapshot()).sessions;
    assert.equal(s.total, n + 1);
    assert.deepEqual(s.byProtocol, { imap: n / 2, pop3: n / 2, smtp: 1 });
    assert.equal(s.list.length, SNAPSHOT_SESSIONS);
    assert.equal(s.list[0]?.id, 'm0');
    assert.equal(s.list[1]?.id, `s${n - 1}`);
    assert.equal(s.list.at(-1)?.id, `s${n + 1 - SNAPSHOT_SESSIONS}`);
  });

  it('keeps the last closed sessions, newest first, capped', async () => {
    const t = setup();
    const n = SNAPSHOT_CLOSED + 7;
    for (let i = 0; i < n; i++) t.open(`s${i}`);
    for (let i = 0; i < n; i++) t.close(`s${i}`, 'client-logout');
    const snap = await t.view.snapshot();
    assert.equal(snap.sessions.total, 0);
    assert.equal(snap.closed.length, SNAPSHOT_CLOSED);
    assert.equal(snap.closed[0]?.id, `s${n - 1}`);
    assert.equal(snap.closed.at(-1)?.id, `s${n - SNAPSHOT_CLOSED}`);
  });

  it('shows live byte counters of spliced sessions from the registry', async () => {
    const registry = new SessionRegistry();
    const t = setup({ registry });
    t.open('s1');
    t.open('s2');
    const splice = { close: () => undefined, bytesIn: 0, bytesOut: 0 } as Splice & {
      bytesIn: number;
      bytesOut: number;
    };
    const info = { id: 's1' } as SessionInfo;
    const unregister = registry.add('alice@example.org', info, splice);
    splice.bytesIn = 123;
    splice.bytesOut = 45_678;
    const bytes = async () =>
      (await t.view.snapshot()).sessions.list.map((s) => [s.id, s.bytesIn, s.bytesOut]);
    assert.deepEqual(await bytes(), [
      ['s2', 0, 0],
      ['s1', 123, 45_678],
    ]);
    splice.bytesOut = 50_000;
    assert.deepEqual((await bytes())[1], ['s1', 123, 50_000]);
    unregister();
    assert.equal(registry.bytes('s1'), undefined);
    assert.deepEqual((await bytes())[1], ['s1', 0, 0]);
  });
});

describe('LiveView transfers', () => {
  it('tracks folder counters, run totals, rate and ETA with a fake clock', async () => {
    const t = setup();
    t.started('alice@example.org', 2);
    t.progress('alice@example.org', {
      folder: 'INBOX',
      phase: 'scan',
      toCopy: 10,
      toCopyBytes: 10_000,
    });
    t.advance(1000);
    t.progress('alice@example.org', {
      folder: 'INBOX',
      phase: 'copy',
      toCopy: 10,
      toCopyBytes: 10_000,
      copied: 1,
      copiedBytes: 1000,
    });
    t.advance(1000);
    t.progress('alice@example.org', {
      folder: 'INBOX',
      phase: 'copy',
      toCopy: 10,
      toCopyBytes: 10_000,
      copied: 3,
      copiedBytes: 3000,
    });
    assert.deepEqual((await t.view.snapshot()).transfers, [
      {
        address: 'alice@example.org',
        node: 'gw1',
        attempt: 2,
        startedAt: iso(T0),
        // the move starts with its pre-copy: the source still serves the account
        step: 'pre-copying',
        folder: 'INBOX',
        phase: 'copy',
        folderCopied: 3,
        folderToCopy: 10,
        folderBytes: 3000,
        folderToCopyBytes: 10_000,
        foldersDone: 0,
        // the run so far includes the folder being copied
        messages: 3,
        bytes: 3000,
        // 3000 bytes over the 2 s since the start
        bytesPerSecond: 1500,
        // 7000 bytes left at 1500/s
        folderEtaSeconds: 5,
      },
    ]);

    // Only the last RATE_WINDOW_MS count: the early fast start drops out of the rate.
    t.advance(9000);
    t.progress('alice@example.org', {
      folder: 'INBOX',
      phase: 'copy',
      toCopy: 10,
      toCopyBytes: 10_000,
      copied: 8,
      copiedBytes: 8000,
    });
    t.advance(1000);
    const mid = (await t.view.snapshot()).transfers[0];
    assert.ok(RATE_WINDOW_MS < 10_000 && RATE_WINDOW_MS >= 8000, 'the numbers below assume it');
    // base is the 3000-byte sample at T0+2s (the last at or before now - window)
    assert.equal(mid?.bytesPerSecond, 500);
    assert.equal(mid?.folderEtaSeconds, 4);

    t.progress('alice@example.org', {
      folder: 'INBOX',
      phase: 'done',
      toCopy: 10,
      toCopyBytes: 10_000,
      copied: 10,
      copiedBytes: 10_000,
    });
    // a repeated 'done' for the same folder is not counted twice
    t.progress('alice@example.org', {
      folder: 'INBOX',
      phase: 'done',
      toCopy: 10,
      toCopyBytes: 10_000,
      copied: 10,
      copiedBytes: 10_000,
    });
    const done = (await t.view.snapshot()).transfers[0];
    assert.deepEqual(
      [done?.phase, done?.foldersDone, done?.messages, done?.bytes, done?.folderEtaSeconds],
      ['done', 1, 10, 10_000, undefined],
    );
    // the finished folder counts once: (10000 - 3000) bytes since the base sample at T0+2s
    assert.equal(done?.bytesPerSecond, 700);
    t.progress('alice@example.org', { folder: 'Sent', phase: 'scan', toCopy: 2, toCopyBytes: 500 });
    const next = (await t.view.snapshot()).transfers[0];
    assert.deepEqual(
      {
        folder: next?.folder,
        phase: next?.phase,
        folderCopied: next?.folderCopied,
        folderToCopy: next?.folderToCopy,
        folderBytes: next?.folderBytes,
        folderToCopyBytes: next?.folderToCopyBytes,
        foldersDone: next?.foldersDone,
        messages: next?.messages,
        bytes: next?.bytes,
        eta: next?.folderEtaSeconds,
      },
      {
        folder: 'Sent',
        phase: 'scan',
        folderCopied: 0,
        folderToCopy: 2,
        folderBytes: 0,
        folderToCopyBytes: 500,
        foldersDone: 1,
        messages: 10,
        bytes: 10_000,
        eta: undefined,
      },
    );
    assert.equal(next?.bytesPerSecond, 700);
    // the switch: the account is locked, and the monitor says so
    t.bus.emit({ type: 'transfer.switching', at: t.at(), address: 'alice@example.org' });
    assert.equal((await t.view.snapshot()).transfers[0]?.step, 'switching');

    // stalled: no progress for longer than the window -> no rate, no guess
    t.progress('alice@example.org', {
      folder: 'Sent',
      phase: 'copy',
      toCopy: 2,
      toCopyBytes: 500,
      copied: 1,
      copiedBytes: 100,
    });
    t.advance(RATE_WINDOW_MS + 5000);
    const stalled = (await t.view.snapshot()).transfers[0];
    assert.equal(stalled?.bytesPerSecond, 0);
    assert.equal(stalled?.folderEtaSeconds, undefined);
  });

  it('drops a finished transfer; a failed one becomes an error', async () => {
    const t = setup();
    t.started('ok@example.org');
    t.started('bad@example.org');
    t.started('stopped@example.org');
    t.progress('stranger@example.org', { folder: 'INBOX', phase: 'scan' });
    assert.deepEqual(
      (await t.view.snapshot()).transfers.map((x) => x.address),
      ['ok@example.org', 'bad@example.org', 'stopped@example.org'],
    );
    t.finished('ok@example.org', true);
    // aborted by the gateway's own shutdown: resumed later, not an error
    t.bus.emit({
      type: 'transfer.finished',
      at: iso(T0),
      address: 'stopped@example.org',
      ok: false,
      aborted: true,
      durationMs: 1,
      detail: 'aborted (stop)',
    });
    t.advance(500);
    t.finished('bad@example.org', false, 'source login refused');
    const snap = await t.view.snapshot();
    assert.deepEqual(snap.transfers, []);
    assert.deepEqual(snap.errors, [
      {
        at: iso(T0 + 500),
        kind: 'transfer',
        subject: 'bad@example.org',
        message: 'source login refused',
      },
    ]);
  });
});

describe('LiveView minutes', () => {
  it('buckets relayed messages and logins per UTC minute, empty minutes included, oldest first', async () => {
    const t = setup();
    t.advance(30_000); // 12:00:30
    t.open('m', 'smtp', 'smtp');
    t.smtp('m', 'source');
    t.smtp('m', 'source', false);
    t.smtp('m', 'destination');
    t.login('a', 'a@example.org', 'ok');
    t.advance(2 * 60_000); // 12:02:30
    t.login('b', 'b@example.org', 'refused');
    t.login('c', 'c@example.org', 'ok');
    const strip = (await t.view.snapshot()).minutes;
    assert.equal(strip.length, SNAPSHOT_MINUTES);
    const last3 = strip.slice(-3);
    assert.deepEqual(last3, [
      {
        minute: '2026-11-20T12:00:00.000Z',
        smtpToSource: 2,
        smtpToDestination: 1,
        loginsOk: 1,
        loginsRefused: 0,
      },
      {
        minute: '2026-11-20T12:01:00.000Z',
        smtpToSource: 0,
        smtpToDestination: 0,
        loginsOk: 0,
        loginsRefused: 0,
      },
      {
        minute: '2026-11-20T12:02:00.000Z',
        smtpToSource: 0,
        smtpToDestination: 0,
        loginsOk: 1,
        loginsRefused: 1,
      },
    ]);
    assert.equal(strip[0]?.minute, '2026-11-20T11:48:00.000Z');

    // 12:14:30: 12:00 is now the oldest minute; one minute later it has rolled off
    t.advance(12 * 60_000);
    assert.equal((await t.view.snapshot()).minutes[0]?.smtpToSource, 2);
    t.advance(60_000);
    const rolled = (await t.view.snapshot()).minutes;
    assert.equal(rolled[0]?.minute, '2026-11-20T12:01:00.000Z');
    assert.equal(rolled.at(-1)?.minute, '2026-11-20T12:15:00.000Z');
    assert.equal(
      rolled.reduce((n, m) => n + m.smtpToSource + m.smtpToDestination + m.loginsOk, 0),
      1,
      'only the 12:02 login is left',
    );
    // 12:15 reuses the slot 12:00 had: it starts from zero
    t.smtp('m', 'source');
    assert.deepEqual((await t.view.snapshot()).minutes.at(-1), {
      minute: '2026-11-20T12:15:00.000Z',
      smtpToSource: 1,
      smtpToDestination: 0,
      loginsOk: 0,
      loginsRefused: 0,
    });
  });
});

describe('LiveView errors', () => {
  it('records refused logins, broken sessions and refused messages, newest first', async () => {
    const t = setup();
    t.login('s0', 'mallory@example.org', 'refused');
    t.advance(1);
    t.open('s1');
    t.close('s1', 'protocol-error', 'line too long');
    t.advance(1);
    t.open('s22', 'smtp', 'smtp');
    t.route('s22', 'bob@example.org', 'destination', 'smtp');
    t.smtp('s22', 'destination', false);
    t.advance(1);
    t.open('s333');
    t.close('s333', 'error');
    assert.deepEqual((await t.view.snapshot()).errors, [
      { at: iso(T0 + 3), kind: 'session', subject: '192.0.2.4', message: 'error' },
      {
        at: iso(T0 + 2),
        kind: 'smtp',
        subject: 'bob@example.org',
        message: 'the destination refused a message: 554',
      },
      {
        at: iso(T0 + 1),
        kind: 'session',
        subject: '192.0.2.2',
        message: 'protocol-error: line too long',
      },
      {
        at: iso(T0),
        kind: 'login',
        subject: 'mallory@example.org',
        message: 'auth-failed: NO [AUTHENTICATIONFAILED]',
      },
    ]);
  });

  it('keeps only the newest SNAPSHOT_ERRORS errors', async () => {
    const t = setup();
    for (let i = 0; i < SNAPSHOT_ERRORS + 5; i++) t.login(`s${i}`, `u${i}@example.org`, 'refused');
    const errors = (await t.view.snapshot()).errors;
    assert.equal(errors.length, SNAPSHOT_ERRORS);
    assert.equal(errors[0]?.subject, `u${SNAPSHOT_ERRORS + 4}@example.org`);
    assert.equal(errors.at(-1)?.subject, 'u5@example.org');
  });
});

describe('LiveView accounts', () => {
  it('counts every state, zeros included; the queue is captured accounts with a password', async () => {
    const t = setup({
      records: [
        rec('a@x', 'captured'),
        rec('b@x', 'captured'),
        rec('c@x', 'captured', true),
        rec('d@x', 'migrated'),
        rec('e@x', 'failed'),
      ],
    });
    const snap = await t.view.snapshot();
    assert.deepEqual(snap.accounts, {
      unknown: 0,
      captured: 3,
      transferring: 0,
      migrated: 1,
      failed: 1,
      excluded: 0,
    });
    assert.equal(snap.queue, 2);
  });

  it('scans the store at most once per ACCOUNTS_TTL_MS', async () => {
    const t = setup({ records: [rec('a@x', 'captured')] });
    assert.equal((await t.view.snapshot()).accounts.captured, 1);
    t.records.push(rec('b@x', 'captured'));
    t.advance(ACCOUNTS_TTL_MS - 1);
    assert.equal((await t.view.snapshot()).accounts.captured, 1);
    assert.equal((await t.view.snapshot()).queue, 1);
    assert.equal(t.scans(), 1);
    t.advance(1);
    assert.equal((await t.view.snapshot()).accounts.captured, 2);
    assert.equal((await t.view.snapshot()).queue, 2);
    assert.equal(t.scans(), 2);
  });
});

describe('LiveView close', () => {
  it('stops following the bus', async () => {
    const t = setup();
    t.open('s1');
    t.view.close();
    t.open('s2');
    t.login('s2', 'x@example.org', 'refused');
    const snap = await t.view.snapshot();
    assert.deepEqual(
      snap.sessions.list.map((s) => s.id),
      ['s1'],
    );
    assert.deepEqual(snap.errors, []);
  });
});

/** a node as the cluster's nodes() lists it, with what it published last */
function nodeRow(c: FakeCluster, alive: boolean, view: unknown): NodeView {
  return {
    node: c.node,
    name: c.name,
    startedAt: iso(T0 - 60_000),
    seenAt: iso(T0 - (alive ? 1000 : 40_000)),
    alive,
    view,
  };
}

describe('LiveView across gateway nodes', () => {
  /** gw1 (the view under test) with one session, gw2 alive with two, gw3 dead with one */
  function threeNodes() {
    const gw1 = setup();
    const gw2 = setup({ cluster: new FakeCluster('gw2') });
    const gw3 = setup({ cluster: new FakeCluster('gw3') });
    gw2.open('r1', 'pop3', 'pop3');
    gw2.advance(2000);
    gw2.open('r2');
    gw2.login('r2', 'bob@example.org', 'ok');
    gw2.started('carol@example.org');
    gw2.view.publish();
    gw3.open('d1');
    gw3.view.publish();
    gw1.advance(1000);
    gw1.open('s1');
    gw1.cluster.answer = [
      nodeRow(gw1.cluster, true, undefined),
      nodeRow(gw2.cluster, true, gw2.cluster.published),
      nodeRow(gw3.cluster, false, gw3.cluster.published),
    ];
    return { gw1, gw2, gw3 };
  }

  it("merges the live nodes' sessions and transfers, each with its node; not a dead node's", async () => {
    const { gw1 } = threeNodes();
    const snap = await gw1.view.snapshot();
    // newest first across nodes: r2 opened at T0+2s, s1 at T0+1s, r1 at T0
    assert.deepEqual(
      snap.sessions.list.map((s) => [s.id, s.node, s.user]),
      [
        ['r2', 'gw2', 'bob@example.org'],
        ['s1', 'gw1', undefined],
        ['r1', 'gw2', undefined],
      ],
    );
    assert.equal(snap.sessions.total, 3);
    assert.deepEqual(snap.sessions.byProtocol, { imap: 2, pop3: 1, smtp: 0 });
    assert.deepEqual(
      snap.transfers.map((t) => [t.address, t.node]),
      [['carol@example.org', 'gw2']],
    );
    assert.deepEqual(snap.nodes, [
      {
        name: 'gw1',
        self: true,
        alive: true,
        sessions: 1,
        transfers: 0,
        seenAt: iso(T0 - 1000),
      },
      {
        name: 'gw2',
        self: false,
        alive: true,
        sessions: 2,
        transfers: 1,
        seenAt: iso(T0 - 1000),
      },
      {
        name: 'gw3',
        self: false,
        alive: false,
        sessions: 0,
        transfers: 0,
        seenAt: iso(T0 - 40_000),
      },
    ]);
    assert.equal(snap.nodesError, undefined);
  });

  it('reads the other nodes at most every NODES_POLL_MS, however many snapshots', async () => {
    const { gw1 } = threeNodes();
    await gw1.view.snapshot();
    gw1.advance(NODES_POLL_MS - 1);
    await gw1.view.snapshot();
    await gw1.view.snapshot();
    assert.equal(gw1.cluster.reads, 1);
    gw1.advance(1);
    await gw1.view.snapshot();
    assert.equal(gw1.cluster.reads, 2);
  });

  it('keeps the last good read when nodes() fails, and says so until a read works', async () => {
    const { gw1 } = threeNodes();
    const ids = (s: MonitorSnapshot) => s.sessions.list.map((x) => x.id).join(' ');
    assert.equal(ids(await gw1.view.snapshot()), 'r2 s1 r1');
    const goodAt = gw1.at();
    gw1.cluster.answer = new Error('connection terminated unexpectedly');
    gw1.advance(NODES_POLL_MS);
    gw1.open('s2');
    const failed = await gw1.view.snapshot();
    assert.equal(ids(failed), 's2 r2 s1 r1', 'this node live, the others as last read');
    assert.equal(
      failed.nodesError,
      `could not read the other nodes: connection terminated unexpectedly; shown as of ${goodAt}`,
    );
    assert.deepEqual(
      failed.nodes.map((n) => [n.name, n.sessions]),
      [
        ['gw1', 2],
        ['gw2', 2],
        ['gw3', 0],
      ],
    );
    gw1.cluster.answer = [nodeRow(gw1.cluster, true, undefined)];
    gw1.advance(NODES_POLL_MS);
    const back = await gw1.view.snapshot();
    assert.equal(back.nodesError, undefined);
    assert.equal(ids(back), 's2 s1', 'gw2 left the cluster');
  });

  it('answers without waiting on a read that hangs, with the last good one', async () => {
    const cluster = new FakeCluster();
    const t = setup({ cluster, live: { nodesWaitMs: 20 } });
    t.open('s1');
    let calls = 0;
    cluster.nodes = () => (calls++ === 0 ? Promise.resolve([]) : new Promise(() => undefined));
    assert.equal((await t.view.snapshot()).nodesError, undefined);
    t.advance(NODES_POLL_MS);
    const started = Date.now();
    const snap = await t.view.snapshot();
    assert.ok(Date.now() - started < 1000, 'the snapshot did not wait for the hung read');
    assert.match(snap.nodesError ?? '', /could not read the other nodes: .*longer/);
    assert.deepEqual(
      snap.sessions.list.map((s) => s.id),
      ['s1'],
    );
    t.advance(NODES_POLL_MS);
    await t.view.snapshot();
    assert.equal(calls, 2, 'no second read while the first still hangs');
  });

  it('with the JSON store it is a cluster of one: no other node, its own sessions', async () => {
    const cluster = new LocalCluster('solo', async () => []);
    const bus = new EventBus();
    const view = new LiveView({
      bus,
      store: { counts: async () => zeroCounts() },
      cluster,
      hello: () => HELLO,
    });
    try {
      bus.emit({
        type: 'session.opened',
        at: iso(T0),
        session: 'x1',
        protocol: 'imap',
        listener: 'imap',
        client: { address: '192.0.2.1', port: 1 },
        tls: false,
      });
      view.publish();
      const snap = await view.snapshot();
      assert.deepEqual(
        snap.sessions.list.map((s) => [s.id, s.node]),
        [['x1', 'solo']],
      );
      assert.deepEqual(
        snap.nodes.map((n) => [n.name, n.self, n.alive, n.sessions]),
        [['solo', true, true, 1]],
      );
    } finally {
      view.close();
    }
  });

  it('publishes its newest SNAPSHOT_SESSIONS sessions every publishMs until closed', async () => {
    const t = setup({ live: { publishMs: 5 } });
    for (let i = 0; i < SNAPSHOT_SESSIONS + 3; i++) t.open(`s${i}`);
    await new Promise((r) => setTimeout(r, 50));
    const published = t.cluster.published as PublishedView;
    assert.equal(published.sessions.total, SNAPSHOT_SESSIONS + 3);
    assert.equal(published.sessions.list.length, SNAPSHOT_SESSIONS);
    assert.equal(published.sessions.list[0]?.id, `s${SNAPSHOT_SESSIONS + 2}`);
    t.view.close();
    t.cluster.published = undefined;
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(t.cluster.published, undefined, 'no publishing after close');
  });

  it("ignores what does not look like a node's view", async () => {
    const t = setup();
    const other = new FakeCluster('gw2');
    t.cluster.answer = [
      nodeRow(other, true, {
        sessions: { total: 'many', list: [{ id: 'ok', openedAt: iso(T0), client: 'c' }, 42] },
        transfers: [{ address: 7 }],
      }),
      nodeRow(new FakeCluster('gw3'), true, 'garbage'),
    ];
    const snap = await t.view.snapshot();
    assert.deepEqual(
      snap.sessions.list.map((s) => [s.id, s.node]),
      [['ok', 'gw2']],
    );
    assert.deepEqual(snap.transfers, []);
    assert.deepEqual(
      snap.nodes.map((n) => [n.name, n.sessions]),
      [
        ['gw1', 0],
        ['gw2', 1],
        ['gw3', 0],
      ],
    );
  });
});
