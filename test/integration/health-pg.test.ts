/**
 * /healthz of `autoport proxy` with its state in PostgreSQL: ok while the database answers,
 * degraded (with why) within a few seconds once it stops answering, ok again when it is
 * back. The database is reached through a TCP relay this test controls, so "down" is every
 * connection dropped and every new one refused, without stopping the shared server.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { runProxyService, type ProxyServiceResult } from '../../src/core/gateway/service.js';
import { memorySink } from '../../src/core/log/index.js';
import { generateKeyFile } from '../../src/core/state/crypto.js';
import { startLab, writeLabConfig, type Lab } from '../support/index.js';
import { startPostgres, type PostgresInstance } from '../support/postgres.js';
import { FAST_BRAKES } from './proxy-support.js';

const PASSWORD_ENV = 'AUTOPORT_TEST_STATE_PASSWORD';

interface Relay {
  port: number;
  down(): void;
  up(): void;
  close(): Promise<void>;
}

/** A TCP relay to `target` that can drop every connection and refuse new ones while down. */
async function startRelay(target: { host: string; port: number }): Promise<Relay> {
  let isDown = false;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    if (isDown) return void client.destroy();
    const upstream = net.connect(target.port, target.host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    }
    const destroy = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('close', destroy).on('error', destroy);
    upstream.on('close', destroy).on('error', destroy);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    down() {
      isDown = true;
      for (const s of sockets) s.destroy();
    },
    up() {
      isDown = false;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

async function healthUntil(
  base: string,
  want: (status: number, body: { status: string; why?: string }) => boolean,
  ms: number,
): Promise<{ status: number; body: { status: string; why?: string }; tookMs: number }> {
  const start = Date.now();
  for (;;) {
    const r = await fetch(`${base}/healthz`);
    const body = (await r.json()) as { status: string; why?: string };
    if (want(r.status, body)) return { status: r.status, body, tookMs: Date.now() - start };
    if (Date.now() - start > ms)
      throw new Error(`/healthz still ${r.status} ${JSON.stringify(body)} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('/healthz with a PostgreSQL state that goes away', { timeout: 180_000 }, () => {
  let lab: Lab;
  let db: PostgresInstance;
  let relay: Relay;
  const signals = new EventEmitter();
  let service: Promise<ProxyServiceResult> | undefined;
  let base: string;

  before(async () => {
    db = await startPostgres();
    lab = await startLab();
    const u = new URL(db.url);
    relay = await startRelay({ host: u.hostname, port: Number(u.port || 5432) });
    if (u.password !== '') process.env[PASSWORD_ENV] = decodeURIComponent(u.password);
    const password = u.password !== '';
    u.password = '';
    u.hostname = '127.0.0.1';
    u.port = String(relay.port);
    const file = writeLabConfig(lab, lab.dir, {
      listen: { imap: '127.0.0.1:0' },
      logDir: join(lab.dir, 'log'),
      state: u.toString(),
      ...(password ? { statePasswordEnv: PASSWORD_ENV } : {}),
      control: { metrics: '127.0.0.1:0' },
    });
    await generateKeyFile(join(lab.dir, 'autoport.key'));
    let metricsPort = 0;
    await new Promise<void>((resolve, reject) => {
      service = runProxyService({
        configPath: file,
        workers: false,
        signals: signals as unknown as Pick<NodeJS.Process, 'on' | 'off'>,
        graceMs: 1_000,
        limits: FAST_BRAKES,
        log: { sink: memorySink(), format: 'json', level: 'debug' },
        onMetricsReady: (a) => (metricsPort = a.port),
        onReady: () => resolve(),
      });
      service.catch(reject);
    });
    base = `http://127.0.0.1:${metricsPort}`;
  });

  after(async () => {
    relay?.up();
    if (service) {
      signals.emit('SIGTERM');
      signals.emit('SIGTERM');
      await service.catch(() => undefined);
    }
    await relay?.close();
    await lab?.stop();
    await db?.stop();
  });

  it('is ok, degraded within seconds once the database stops answering, ok when it is back', async () => {
    const ok = await healthUntil(base, (s) => s === 200, 0);
    assert.equal(ok.body.status, 'ok');

    relay.down();
    const down = await healthUntil(base, (s) => s === 503, 10_000);
    assert.equal(down.body.status, 'degraded');
    assert.match(down.body.why!, /^the state store does not answer since \d{4}-/);
    assert.ok(down.tookMs <= 4_000, `degraded after ${down.tookMs} ms`);

    relay.up();
    const back = await healthUntil(base, (s) => s === 200, 15_000);
    assert.equal(back.body.status, 'ok');
    assert.ok(back.tookMs <= 8_000, `ok again after ${back.tookMs} ms`);
    console.log(`# degraded after ${down.tookMs} ms, ok again after ${back.tookMs} ms`);
  });
});
