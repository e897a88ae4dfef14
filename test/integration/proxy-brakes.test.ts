/**
 * Brakes, connection limits, timeouts, kicks, shutdown and session events, with a
 * scripted stand-in backend (an echo server behind a fake upstream factory) so faults
 * and timing can be controlled; the real-server behaviour is in proxy-imap/pop3.
 */
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EventBus, type GatewayEvent } from '../../src/core/bus.js';
import { parseEndpoint } from '../../src/core/config/endpoint.js';
import type { Config } from '../../src/core/config/types.js';
import { startGateway, type Gateway } from '../../src/core/gateway/gateway.js';
import type { LimitsOverride } from '../../src/core/limits.js';
import { generateKeyFile, loadKeyring, type Keyring } from '../../src/core/state/crypto.js';
import { openJsonStore, type JsonStore } from '../../src/core/state/json-store.js';
import { UpstreamError } from '../../src/core/upstreams/errors.js';
import type { UpstreamFactory } from '../../src/core/upstreams/types.js';
import { RawClient } from './proxy-support.js';

function configFor(dir: string, idleMs = 60_000): Config {
  return {
    file: join(dir, 'autoport.yaml'),
    source: {
      imap: parseEndpoint('imap://127.0.0.1:1?tls=none'),
      pop3: parseEndpoint('pop3://127.0.0.1:1?tls=none'),
      useImap: true,
    },
    destination: {
      imap: parseEndpoint('imap://127.0.0.1:2?tls=none'),
      provision: { kind: 'none' },
    },
    listen: { imap: { host: '127.0.0.1', port: 0 }, pop3: { host: '127.0.0.1', port: 0 } },
    domains: ['example.org'],
    strategy: 'proxy',
    state: join(dir, 'state.json'),
    stateDir: dir,
    keyFile: join(dir, 'autoport.key'),
    logDir: dir,
    transfer: { connections: 1, concurrency: 1 },
    timeouts: { connectMs: 1000, greetingMs: 1000, commandMs: 1000, idleMs },
  };
}

describe(
  'gateway brakes, limits and session events (stand-in backend)',
  { timeout: 60_000 },
  () => {
    let dir: string;
    let store: JsonStore;
    let keyring: Keyring;
    let echo: Server;
    let echoPort = 0;
    const gateways: Gateway[] = [];
    let logins = 0;

    const upstreams: UpstreamFactory = {
      async login(_side, protocol, creds) {
        logins++;
        if (creds.password !== 'good')
          throw new UpstreamError('EAUTH', 'stand-in refused', 'NO wrong');
        const socket = await new Promise<Socket>((resolve) => {
          const s = connect(echoPort, '127.0.0.1', () => resolve(s));
        });
        return {
          socket,
          buffered: Buffer.alloc(0),
          loginText:
            protocol === 'imap' ? '[CAPABILITY IMAP4rev1 STANDIN] Logged in' : 'Logged in.',
        };
      },
    };

    async function gateway(
      limits: LimitsOverride = {},
      idleMs?: number,
      bus = new EventBus(),
    ): Promise<Gateway> {
      const g = await startGateway(configFor(dir, idleMs), {
        store,
        keyring,
        bus,
        upstreams,
        limits: { brakes: { failureDelayMs: 10 }, ...limits },
      });
      gateways.push(g);
      return g;
    }

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'ap-brakes-'));
      await generateKeyFile(join(dir, 'autoport.key'));
      keyring = loadKeyring(join(dir, 'autoport.key'));
      store = await openJsonStore(join(dir, 'state.json'), { saveDelayMs: 5 });
      echo = createServer((s) => {
        s.on('error', () => undefined);
        s.pipe(s);
      });
      await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
      echoPort = (echo.address() as { port: number }).port;
    });
    after(async () => {
      await Promise.all(gateways.map((g) => g.stop(0)));
      await store.close();
      echo.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('connection limits are answered in-protocol', async () => {
      const g = await gateway({ connections: { maxPerAddress: 2, maxTotal: 100 } });
      const a = await RawClient.open(g.listeners.imap!.port);
      const b = await RawClient.open(g.listeners.pop3!.port);
      await a.waitFor(/^\* OK/);
      await b.waitFor(/^\+OK/);
      const c = await RawClient.open(g.listeners.imap!.port);
      await c.waitFor(/^\* BYE \[UNAVAILABLE\] Too many connections/);
      await c.waitClosed();
      const d = await RawClient.open(g.listeners.pop3!.port);
      await d.waitFor(/^-ERR \[SYS\/TEMP\] Too many connections/);
      await d.waitClosed();
      a.close();
      await new Promise((r) => setTimeout(r, 100));
      const e = await RawClient.open(g.listeners.imap!.port);
      await e.waitFor(/^\* OK/);
      e.close();
      b.close();
    });

    it('failures are delayed; an account over its limit from one address is refused there before reaching the backend', async () => {
      const g = await gateway({ brakes: { failureDelayMs: 300, maxFailuresPerAccount: 2 } });
      const port = g.listeners.imap!.port;
      const r1 = await RawClient.open(port);
      const t0 = Date.now();
      r1.send('a LOGIN frank@example.org bad1\r\n');
      await r1.waitFor(/^a NO \[AUTHENTICATIONFAILED\]/m);
      assert.ok(Date.now() - t0 >= 280, `reply came after ${Date.now() - t0} ms`);
      r1.close();
      const r2 = await RawClient.open(g.listeners.pop3!.port);
      r2.send('USER frank@example.org\r\nPASS bad2\r\n');
      await r2.waitFor(/^-ERR \[AUTH\]/m);
      r2.close();
      const before = logins;
      const r3 = await RawClient.open(port);
      r3.send('b LOGIN frank@example.org good\r\n');
      await r3.waitFor(/^b NO \[LIMIT\] /m);
      await r3.waitClosed();
      assert.equal(logins, before, 'the backend was not asked');
    });

    it('session events: opened, login, route, closed with bytes; the splice is byte-exact', async () => {
      const bus = new EventBus();
      const events: GatewayEvent[] = [];
      bus.onAny((e) => events.push(e));
      const g = await gateway({}, undefined, bus);
      const r = await RawClient.open(g.listeners.imap!.port);
      r.send('a LOGIN grace@example.org good\r\n');
      await r.waitFor(/^a OK \[CAPABILITY IMAP4rev1 STANDIN\] Logged in\r\n/m);
      const payload = 'x SELECT INBOX\r\n\u00ff\u0000binary\r\n';
      r.send(Buffer.from(payload, 'latin1'));
      await r.waitFor(/binary\r\n/);
      assert.ok(r.text.endsWith(payload));
      r.close();
      await new Promise((res) => setTimeout(res, 100));
      const mine = events.filter((e) => 'session' in e);
      assert.deepEqual(
        mine.map((e) => e.type),
        ['session.opened', 'session.route', 'session.login', 'session.closed'],
      );
      const closed = mine.at(-1) as Extract<GatewayEvent, { type: 'session.closed' }>;
      assert.equal(closed.reason, 'client-closed');
      assert.equal(closed.user, 'grace@example.org');
      assert.ok(
        closed.bytesIn >= payload.length + 30 && closed.bytesOut >= payload.length,
        JSON.stringify(closed),
      );
      assert.equal((await store.get('grace@example.org'))?.state, 'captured');
    });

    it('timeouts: pre-auth idle and spliced idle', async () => {
      const g = await gateway({ preauth: { idleMs: 200 } }, 300);
      const pre = await RawClient.open(g.listeners.imap!.port);
      await pre.waitFor(/^\* BYE Disconnected for inactivity\.\r\n/m, 2000);
      await pre.waitClosed();
      const r = await RawClient.open(g.listeners.pop3!.port);
      r.send('USER henry@example.org\r\nPASS good\r\n');
      await r.waitFor(/^\+OK Logged in/m);
      await r.waitClosed(2000);
    });

    it("kick closes an account's spliced sessions; stop() waits for the grace period, then cuts", async () => {
      const bus = new EventBus();
      const closed: string[] = [];
      bus.on('session.closed', (e) => closed.push(e.reason));
      const g = await gateway({}, undefined, bus);
      const port = g.listeners.imap!.port;
      const a = await RawClient.open(port);
      a.send('a LOGIN ivan@example.org good\r\n');
      await a.waitFor(/^a OK/m);
      const b = await RawClient.open(port);
      b.send('b LOGIN judy@example.org good\r\n');
      await b.waitFor(/^b OK/m);
      assert.equal(g.sessions.count('IVAN@example.org'), 1);
      assert.equal(g.sessions.kick('ivan@example.org', 'account-locked'), 1);
      await a.waitClosed();
      assert.equal(g.sessions.count('ivan@example.org'), 0);
      const t0 = Date.now();
      await g.stop(300);
      assert.ok(Date.now() - t0 >= 250);
      await b.waitClosed();
      assert.deepEqual(closed, ['account-locked', 'shutdown']);
      await assert.rejects(RawClient.open(port), 'the listener is closed');
    });
  },
);
