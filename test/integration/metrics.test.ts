/**
 * /metrics and /healthz of the real `autoport proxy` service (runProxyService) over a real
 * lab: IMAP logins with imapflow (one good, one wrong password), the worker pool moving the
 * captured account with the real copy engine, two messages over port 25 with nodemailer
 * (one to the destination, one relayed to the source's Postfix), then one scrape over HTTP
 * read with a strict parser and exact values, the histograms' counts included, beside
 * prom-client's process_ and nodejs_ series. Shutdown: /healthz says stopping during the
 * grace period, then the endpoint is gone. An address in use stops the start-up with an
 * OperatorError and leaves nothing open.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import nodemailer from 'nodemailer';
import type { GatewayEvent } from '../../src/core/bus.js';
import { isOperatorError } from '../../src/core/errors.js';
import type { Gateway } from '../../src/core/gateway/gateway.js';
import { runProxyService, type ProxyServiceResult } from '../../src/core/gateway/service.js';
import { memorySink } from '../../src/core/log/index.js';
import { generateKeyFile } from '../../src/core/state/crypto.js';
import { openJsonStore } from '../../src/core/state/json-store.js';
import { loadCorpus, makeMessage, startLab, writeLabConfig, type Lab } from '../support/index.js';
import { parseExposition, type Exposition } from '../support/prometheus.js';
import { FAST_BRAKES, gatewayImap } from './proxy-support.js';

/** signals come from an EventEmitter here (ProxyServiceOptions.signals) */
const fakeSignals = (e: EventEmitter) => e as unknown as Pick<NodeJS.Process, 'on' | 'off'>;

const alice = { user: 'alice@example.org', password: 'alice-secret' };
const bob = { user: 'bob@example.org', password: 'bob-secret' };

/** CRLF throughout and no line starting with a dot, so what is sent is what is relayed */
function rawMail(to: string, marker: string): string {
  return [
    'From: <sender@elsewhere.test>',
    `To: <${to}>`,
    `Subject: ${marker}`,
    `Message-ID: <${marker}@elsewhere.test>`,
    'Date: Mon, 01 Jan 2024 12:00:00 +0000',
    '',
    `body of ${marker}`,
    '',
  ].join('\r\n');
}

async function until<T>(what: string, f: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('metrics endpoint of autoport proxy (real lab)', { timeout: 240_000 }, () => {
  let lab: Lab;
  let corpusBytes = 0;
  let corpusMessages = 0;
  const signals = new EventEmitter();
  let service: Promise<ProxyServiceResult> | undefined;
  let gateway: Gateway;
  let base: string;
  const events: GatewayEvent[] = [];
  const log = memorySink();

  before(async () => {
    lab = await startLab({ sourceQuirks: { authFailureDelay: '0 secs' } });
    const date = new Date(Date.UTC(2024, 2, 1, 12));
    const m = (subject: string, body: string) => ({
      key: subject,
      raw: makeMessage({ subject, body, date }),
      flags: [],
      internalDate: date,
    });
    const loaded = await loadCorpus(lab.source, alice.user, alice.password, {
      folders: [
        {
          path: 'INBOX',
          selectable: true,
          subscribe: true,
          messages: [m('one', 'first\n'), m('two', 'second\n'), m('three', 'x'.repeat(5000))],
        },
        {
          path: 'Archive',
          selectable: true,
          subscribe: true,
          messages: [m('four', 'fourth\n'), m('five', 'fifth\n')],
        },
      ],
    });
    corpusBytes = loaded.bytes;
    corpusMessages = loaded.messages;
    const file = writeLabConfig(lab, lab.dir, {
      listen: { imap: '127.0.0.1:0', smtp: '127.0.0.1:0' },
      logDir: join(lab.dir, 'log'),
      control: { metrics: '127.0.0.1:0' },
      timeouts: { connectMs: 3000, greetingMs: 3000, commandMs: 10_000, idleMs: 60_000 },
    });
    await generateKeyFile(join(lab.dir, 'autoport.key'));
    let metricsPort = 0;
    const ready = new Promise<void>((resolve, reject) => {
      service = runProxyService({
        configPath: file,
        signals: fakeSignals(signals),
        graceMs: 20_000,
        limits: FAST_BRAKES,
        log: { sink: log, format: 'json', level: 'debug' },
        onMetricsReady: (a) => (metricsPort = a.port),
        onReady: (g) => {
          gateway = g;
          g.bus.onAny((e) => events.push(e));
          resolve();
        },
      });
      service.catch(reject);
    });
    await ready;
    assert.ok(metricsPort > 0, 'port 0 in the config becomes a real port');
    base = `http://127.0.0.1:${metricsPort}`;
  });

  after(async () => {
    if (service && gateway) {
      signals.emit('SIGTERM');
      signals.emit('SIGTERM');
      await service.catch(() => undefined);
    }
    await lab?.stop();
  });

  async function scrape(): Promise<Exposition> {
    const r = await fetch(`${base}/metrics`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
    return parseExposition(await r.text());
  }

  it('counts logins, the transfer, SMTP by route and serves /healthz', async () => {
    const imapPort = gateway.listeners.imap!.port;
    const smtpPort = gateway.listeners.smtp!.port;

    const good = gatewayImap(imapPort, alice.user, alice.password);
    await good.connect();
    await good.mailboxOpen('INBOX');
    // while alice is spliced to the source the gauges say so
    let x = await scrape();
    assert.equal(x.get('autoport_sessions_open', { protocol: 'imap', route: 'source' }), 1);
    assert.equal(x.get('autoport_sessions_spliced'), 1);
    await good.logout();

    const bad = gatewayImap(imapPort, bob.user, 'not-bobs-password');
    await assert.rejects(bad.connect());
    bad.close();

    // the worker pool moves alice once she is gone
    await until('alice migrated', async () =>
      events.find((e) => e.type === 'transfer.finished' && e.address === alice.user),
    );
    const finished = events.find((e) => e.type === 'transfer.finished');
    assert.ok(finished?.type === 'transfer.finished' && finished.ok, JSON.stringify(finished));

    const sent = { toAlice: rawMail(alice.user, 'm-dest'), toBob: rawMail(bob.user, 'm-src') };
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: smtpPort,
      secure: false,
      ignoreTLS: true,
    });
    const r1 = await transport.sendMail({
      envelope: { from: 'sender@elsewhere.test', to: [alice.user] },
      raw: sent.toAlice,
    });
    const r2 = await transport.sendMail({
      envelope: { from: 'sender@elsewhere.test', to: [bob.user] },
      raw: sent.toBob,
    });
    assert.match(r1.response, /^250 /);
    assert.match(r2.response, /^250 /);
    transport.close();

    // every client is gone: wait until the gateway has seen the last close, and until the
    // account gauges (cached for up to a second) have caught up with the transfer
    x = await until('sessions closed', async () => {
      const s = await scrape();
      return s.sum('autoport_sessions_open') === 0 &&
        s.get('autoport_accounts', { state: 'migrated' }) === 1
        ? s
        : undefined;
    });

    const login = (protocol: string, result: string, outcome: string) =>
      x.get('autoport_logins_total', { protocol, result, outcome });
    assert.equal(login('imap', 'ok', ''), 1);
    assert.equal(login('imap', 'refused', 'auth-failed'), 1);
    assert.equal(x.sum('autoport_logins_total'), 2);
    assert.equal(x.get('autoport_sessions_opened_total', { protocol: 'imap' }), 2);
    assert.equal(x.get('autoport_sessions_opened_total', { protocol: 'smtp' }), 2);
    assert.equal(x.get('autoport_sessions_opened_total', { protocol: 'pop3' }), 0);
    assert.equal(x.sum('autoport_sessions_closed_total', { protocol: 'imap' }), 2);
    assert.equal(x.get('autoport_sessions_spliced'), 0);

    assert.equal(x.get('autoport_accounts_captured_total'), 1);
    assert.equal(x.get('autoport_transfers_started_total'), 1);
    assert.equal(x.get('autoport_transfers_finished_total', { result: 'ok' }), 1);
    assert.equal(x.get('autoport_transfers_finished_total', { result: 'failed' }), 0);
    assert.equal(x.get('autoport_transfers_running'), 0);
    assert.equal(x.get('autoport_transfer_messages_total'), corpusMessages);
    assert.equal(x.get('autoport_transfer_bytes_total'), corpusBytes);
    assert.equal(x.get('autoport_accounts', { state: 'migrated' }), 1);
    assert.equal(x.get('autoport_accounts', { state: 'captured' }), 0);
    assert.equal(x.get('autoport_transfer_queue'), 0);

    const smtp = (route: string, cls: string) =>
      x.get('autoport_smtp_messages_total', { route, class: cls });
    assert.equal(smtp('destination', '2xx'), 1);
    assert.equal(smtp('source', '2xx'), 1);
    assert.equal(x.sum('autoport_smtp_messages_total'), 2);
    assert.equal(
      x.get('autoport_smtp_bytes_total', { route: 'destination' }),
      Buffer.byteLength(sent.toAlice),
    );
    assert.equal(
      x.get('autoport_smtp_bytes_total', { route: 'source' }),
      Buffer.byteLength(sent.toBob),
    );
    assert.ok(x.get('autoport_state_saves_total')! > 0);
    assert.equal(x.get('autoport_state_save_failures_total'), 0);
    assert.equal(x.get('autoport_state_save_failing'), 0);

    // each histogram observed what happened: two logins checked at the source, one
    // transfer (its account locked for the switch), one relay per route
    const check = (result: string) =>
      x.histogram('autoport_login_check_seconds', { protocol: 'imap', side: 'source', result });
    assert.equal(check('ok')?.count, 1);
    assert.equal(check('refused')?.count, 1);
    assert.ok(check('ok')!.sum > 0);
    assert.equal(x.sum('autoport_login_check_seconds_count'), 2);
    const relay = (route: string) => x.histogram('autoport_smtp_relay_seconds', { route });
    assert.equal(relay('destination')?.count, 1);
    assert.equal(relay('source')?.count, 1);
    assert.ok(relay('source')!.sum > 0);
    const took = x.histogram('autoport_transfer_duration_seconds', { result: 'ok' });
    assert.equal(took?.count, 1);
    assert.equal(x.histogram('autoport_transfer_duration_seconds', { result: 'failed' })?.count, 0);
    const locked = x.histogram('autoport_account_lock_seconds');
    assert.equal(locked?.count, 1);
    // the lock is the switch only, a part of the run
    assert.ok(locked!.sum > 0 && locked!.sum <= took!.sum, `${locked!.sum} vs ${took!.sum}`);

    // prom-client's standard series, for stock Node.js dashboards
    assert.ok(x.get('process_resident_memory_bytes')! > 0);
    assert.ok(x.get('process_cpu_seconds_total')! > 0);
    assert.ok(x.get('process_start_time_seconds')! > 0);
    assert.ok(x.get('nodejs_heap_size_used_bytes')! > 0);
    assert.equal(x.types.get('nodejs_eventloop_lag_p99_seconds'), 'gauge');
    assert.ok(x.get('autoport_start_time_seconds')! * 1000 <= Date.now());

    const h = await fetch(`${base}/healthz`);
    assert.equal(h.status, 200);
    const body = (await h.json()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(body).sort(), [
      'listeners',
      'sessions',
      'status',
      'uptimeSeconds',
    ]);
    assert.equal(body.status, 'ok');
    // imap and smtp from this test, pop3 from the lab's config
    assert.deepEqual(Object.keys(gateway.listeners).sort(), ['imap', 'pop3', 'smtp']);
    assert.equal(body.listeners, 3);
    assert.equal(body.sessions, 0);
    assert.equal(typeof body.uptimeSeconds, 'number');
  });

  it('says stopping during the grace period, then stops serving', async () => {
    const imapPort = gateway.listeners.imap!.port;
    const c = gatewayImap(imapPort, alice.user, alice.password);
    await c.connect();
    await c.mailboxOpen('INBOX');
    signals.emit('SIGTERM');
    const h = await fetch(`${base}/healthz`);
    assert.equal(h.status, 503);
    const body = (await h.json()) as { status: string; why: string };
    assert.equal(body.status, 'stopping');
    assert.match(body.why, /^SIGTERM/);
    // still scrapeable while sessions finish: one session routed to the destination
    const x = await scrape();
    assert.equal(x.get('autoport_sessions_open', { protocol: 'imap', route: 'destination' }), 1);
    const check = x.histogram('autoport_login_check_seconds', {
      protocol: 'imap',
      side: 'destination',
      result: 'ok',
    });
    assert.equal(check?.count, 1);
    await c.logout();
    const result = await service!;
    assert.equal(result.signal, 'SIGTERM');
    await assert.rejects(fetch(`${base}/healthz`), /fetch failed/);
    assert.match(log.text(), /"msg":"metrics on http:\/\/127\.0\.0\.1:\d+\/metrics/);
  });
});

describe('metrics endpoint: address in use', { timeout: 120_000 }, () => {
  let lab: Lab;
  let taken: Server;
  before(async () => {
    lab = await startLab();
    taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
  });
  after(async () => {
    await new Promise<void>((r) => taken.close(() => r()));
    await lab?.stop();
  });

  it('refuses to start, names control.metrics, and leaves nothing open', async () => {
    const port = (taken.address() as { port: number }).port;
    const dir = join(lab.dir, 'inuse');
    mkdirSync(dir);
    const file = writeLabConfig(lab, dir, {
      listen: { imap: '127.0.0.1:0' },
      logDir: join(dir, 'log'),
      control: { metrics: `127.0.0.1:${port}` },
    });
    await generateKeyFile(join(dir, 'autoport.key'));
    let imapPort = 0;
    const err = await runProxyService({
      configPath: file,
      signals: fakeSignals(new EventEmitter()),
      workers: false,
      log: { sink: memorySink(), format: 'json' },
      onReady: (g) => (imapPort = g.listeners.imap!.port),
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(isOperatorError(err), String(err));
    assert.equal(err.code, 'EADDRINUSE');
    assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${port}: the address is in use`));
    assert.match(err.hint, /control\.metrics/);
    assert.equal(imapPort, 0, 'never reported ready');
    // the store's lock is released: another process could open it now
    const store = await openJsonStore(join(dir, 'state.json'));
    await store.close();
  });
});
