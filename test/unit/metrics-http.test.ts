/**
 * The metrics HTTP endpoint on a real loopback socket: what each path and method gets,
 * HEAD without a body, a request body refused, an address in use refused with a hint that
 * names control.metrics.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { isOperatorError } from '../../src/core/errors.js';
import { createLogger, memorySink } from '../../src/core/log/index.js';
import type { Health } from '../../src/core/metrics/health.js';
import { startMetricsServer, type MetricsServer } from '../../src/core/metrics/http.js';
import { gatewayRegistry } from '../../src/core/metrics/registry.js';
import { Counter } from 'prom-client';
import { RawClient } from '../integration/proxy-support.js';

describe('metrics HTTP endpoint', () => {
  let server: MetricsServer;
  let base: string;
  let health: Health = { status: 'ok', listeners: 2, sessions: 0, uptimeSeconds: 5 };
  const sink = memorySink();
  const registry = gatewayRegistry({ defaults: false });
  new Counter({ name: 'x_total', help: 'X.', registers: [registry] }).inc(3);
  let failing = false;
  before(async () => {
    server = await startMetricsServer(
      { host: '127.0.0.1', port: 0 },
      {
        metrics: () =>
          failing ? Promise.reject(new Error('injected: collect failed')) : registry.metrics(),
        contentType: registry.contentType,
        health: () => health,
        logger: createLogger({ sink, format: 'json' }),
      },
    );
    base = `http://127.0.0.1:${server.address.port}`;
  });
  after(() => server?.close());

  it('serves /metrics as text 0.0.4 and HEAD with the same headers and no body', async () => {
    const r = await fetch(`${base}/metrics`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), registry.contentType);
    assert.equal(r.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
    const body = await r.text();
    assert.equal(body, '# HELP x_total X.\n# TYPE x_total counter\nx_total 3\n');
    assert.equal(r.headers.get('content-length'), String(body.length));
    const h = await fetch(`${base}/metrics?name[]=x`, { method: 'HEAD' });
    assert.equal(h.status, 200);
    assert.equal(h.headers.get('content-length'), String(body.length));
    assert.equal(await h.text(), '');
  });

  it('answers /healthz 200 with the JSON status, 503 otherwise', async () => {
    let r = await fetch(`${base}/healthz`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
    assert.deepEqual(await r.json(), {
      status: 'ok',
      listeners: 2,
      sessions: 0,
      uptimeSeconds: 5,
    });
    health = { status: 'degraded', why: 'saving the state failed' };
    r = await fetch(`${base}/healthz`);
    assert.equal(r.status, 503);
    assert.deepEqual(await r.json(), { status: 'degraded', why: 'saving the state failed' });
    r = await fetch(`${base}/healthz`, { method: 'HEAD' });
    assert.equal(r.status, 503);
    health = { status: 'ok', listeners: 2, sessions: 0, uptimeSeconds: 5 };
  });

  it('answers 500 and logs when the registry cannot be read', async () => {
    failing = true;
    try {
      const r = await fetch(`${base}/metrics`);
      assert.equal(r.status, 500);
      assert.match(await r.text(), /see the gateway log/);
      assert.match(sink.text(), /rendering the metrics failed.*injected: collect failed/);
    } finally {
      failing = false;
    }
    assert.equal((await fetch(`${base}/metrics`)).status, 200);
  });

  it('404 for other paths, 405 for other methods, 413 for a body', async () => {
    for (const p of ['/', '/metrics/', '/Metrics', '/healthz/x', '/favicon.ico'])
      assert.equal((await fetch(`${base}${p}`)).status, 404, p);
    const post = await fetch(`${base}/metrics`, { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
    // a GET that carries a body, on a raw socket (fetch does not send one with GET)
    const c = await RawClient.open(server.address.port);
    c.send('GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello');
    await c.waitFor(/^HTTP\/1\.1 413 /);
    await c.waitClosed();
    const chunked = await RawClient.open(server.address.port);
    chunked.send('GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n');
    await chunked.waitFor(/^HTTP\/1\.1 413 /);
    await chunked.waitClosed();
    // the endpoint still works afterwards
    assert.equal((await fetch(`${base}/metrics`)).status, 200);
  });

  it('keeps a connection for several scrapes', async () => {
    const c = await RawClient.open(server.address.port);
    c.send('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await c.waitFor(/x_total 3\n[\s\S]*HTTP\/1\.1 200 OK[\s\S]*"status":"ok"/);
    c.close();
  });

  it('close() drops kept-alive connections and refuses new ones', async () => {
    const s = await startMetricsServer(
      { host: '127.0.0.1', port: 0 },
      {
        metrics: () => '',
        contentType: 'text/plain',
        health: () => health,
        logger: createLogger({ sink, format: 'json' }),
      },
    );
    const c = await RawClient.open(s.address.port);
    c.send('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await c.waitFor(/"status":"ok"/);
    await s.close();
    await c.waitClosed();
    await assert.rejects(fetch(`http://127.0.0.1:${s.address.port}/healthz`), /fetch failed/);
  });
});

describe('metrics HTTP endpoint: address in use', () => {
  let taken: Server;
  before(async () => {
    taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
  });
  after(() => new Promise<void>((r) => taken.close(() => r())));

  it('refuses to start with an OperatorError naming control.metrics', async () => {
    const port = (taken.address() as { port: number }).port;
    const err = await startMetricsServer(
      { host: '127.0.0.1', port },
      {
        metrics: () => '',
        contentType: 'text/plain',
        health: () => ({ status: 'ok', listeners: 0, sessions: 0, uptimeSeconds: 0 }),
        logger: createLogger({ sink: memorySink(), format: 'json' }),
      },
    ).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(isOperatorError(err), String(err));
    assert.equal(err.code, 'EADDRINUSE');
    assert.equal(err.message, `cannot serve metrics on 127.0.0.1:${port}: the address is in use`);
    assert.match(err.hint, /change control\.metrics in the config/);
  });
});

describe('metrics HTTP endpoint: bounds', () => {
  const deps = {
    metrics: () => 'x 1\n',
    contentType: 'text/plain',
    health: (): Health => ({ status: 'ok', listeners: 1, sessions: 0, uptimeSeconds: 0 }),
    logger: createLogger({ sink: memorySink(), format: 'json' }),
  };

  it('drops a client that never finishes its request headers', async () => {
    const s = await startMetricsServer({ host: '127.0.0.1', port: 0 }, deps, {
      headersTimeoutMs: 300,
      requestTimeoutMs: 300,
      checkEveryMs: 100,
    });
    try {
      const c = await RawClient.open(s.address.port);
      c.send('GET /metrics HTTP/1.1\r\nHost: x\r\n');
      await c.waitClosed(10_000);
      assert.match(c.text, /^HTTP\/1\.1 408 /);
    } finally {
      await s.close();
    }
  });

  it('holds at most maxConnections connections', async () => {
    const s = await startMetricsServer({ host: '127.0.0.1', port: 0 }, deps, { maxConnections: 2 });
    try {
      const held = [await RawClient.open(s.address.port), await RawClient.open(s.address.port)];
      for (const c of held) {
        c.send('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
        await c.waitFor(/"status":"ok"/);
      }
      const third = await RawClient.open(s.address.port);
      await third.waitClosed();
      assert.equal(third.text, '');
      held[0]!.close();
      // a place is free again once the server has seen that close
      let status = 0;
      for (let i = 0; i < 50 && status !== 200; i++) {
        status = await fetch(`http://127.0.0.1:${s.address.port}/healthz`).then(
          (r) => r.status,
          () => new Promise<number>((r) => setTimeout(() => r(0), 100)),
        );
      }
      assert.equal(status, 200);
      held[1]!.close();
    } finally {
      await s.close();
    }
  });
});
