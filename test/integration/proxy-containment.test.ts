/**
 * A bug met while handling one connection ends that connection only: the client gets the
 * protocol's last line (IMAP BYE [SERVERBUG], POP3 -ERR [SYS/TEMP], SMTP 421 4.3.0), the
 * log has the fault with its session id, autoport_session_faults_total counts it, and
 * every other session (spliced or not) and the process go on.
 *
 * The IMAP/POP3 front-ends run on real sockets with a stand-in gateway (FrontendDeps,
 * style.md habit 8) whose hooks throw on demand; the backend is a small echo server. SMTP
 * runs the real listener with a `stopping` hook that throws.
 */
import assert from 'node:assert/strict';
import { zeroCounts } from '../../src/core/state/account-counts.js';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { EventBus } from '../../src/core/bus.js';
import { startImapSession } from '../../src/core/imap/session.js';
import {
  startListener,
  TlsProvider,
  type AcceptHandlers,
  type RunningListener,
} from '../../src/core/listen/listeners.js';
import { startPop3Session } from '../../src/core/pop3/session.js';
import type { FrontendDeps, LoginResult, SessionInfo } from '../../src/core/sessions/types.js';
import { ConnectionLimiter } from '../../src/core/listen/connection-limiter.js';
import { DEFAULT_LIMITS, type PreauthLimits } from '../../src/core/limits.js';
import { createLogger, memorySink } from '../../src/core/log/index.js';
import { createGatewayMetrics, type GatewayMetrics } from '../../src/core/metrics/endpoint.js';
import { RawClient } from './proxy-support.js';
import { SmtpDialog, startGatewaySmtp, type GatewayLab, type TestGateway } from './smtp-support.js';

/** A backend that answers every line with "* ECHO <line>". */
async function echoBackend(): Promise<{ port: number; server: Server; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString('latin1');
      let i: number;
      while ((i = buf.indexOf('\r\n')) >= 0) {
        s.write(`* ECHO ${buf.slice(0, i)}\r\n`);
        buf = buf.slice(i + 2);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as { port: number }).port, server, sockets };
}

async function metricValue(m: GatewayMetrics, protocol: string): Promise<number> {
  const re = new RegExp(`^autoport_session_faults_total\\{protocol="${protocol}"\\} (\\d+)$`, 'm');
  const hit = re.exec(await m.render());
  assert.ok(hit, 'autoport_session_faults_total is exported');
  return Number(hit[1]);
}

describe('containment: IMAP and POP3 front-ends', { timeout: 60_000 }, () => {
  const bus = new EventBus();
  const sink = memorySink();
  const logger = createLogger({ sink, format: 'json', level: 'debug' });
  const metrics = createGatewayMetrics({
    bus,
    store: { counts: async () => zeroCounts() },
    defaultMetrics: false,
  });
  const limiter = new ConnectionLimiter(() => ({ maxTotal: 100, maxPerAddress: 100 }));
  let backend: Awaited<ReturnType<typeof echoBackend>>;
  const listeners: RunningListener[] = [];
  const port: Record<string, number> = {};
  /** which hook throws now (one at a time) */
  let armed: 'data' | 'track' | 'ready' | undefined;

  const login = async (user: string): Promise<LoginResult> => {
    const socket = connect({ port: backend.port, host: '127.0.0.1' });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('error', reject);
    });
    const upstream = { socket, buffered: Buffer.alloc(0), loginText: 'Logged in' };
    return { ok: true, user, target: 'source', upstream, release: () => undefined };
  };

  const limits: PreauthLimits = {
    ...DEFAULT_LIMITS.preauth,
    // read in the socket's data handler for every command
    get maxCommands(): number {
      if (armed === 'data') throw new Error('injected: bug in the data handler');
      return DEFAULT_LIMITS.preauth.maxCommands;
    },
  };
  const deps: FrontendDeps = {
    limits,
    spliceIdleMs: 60_000,
    bus,
    logger,
    login: (req) => {
      if (req.user === 'sync-bug') throw new Error('injected: login threw');
      if (req.user === 'async-bug') return Promise.reject(new Error('injected: login rejected'));
      return login(req.user);
    },
    track: () => {
      if (armed === 'track') throw new Error('injected: track threw');
      return () => undefined;
    },
    stopping: () => false,
  };

  const handlers: AcceptHandlers = {
    admit: (socket) => limiter.acquire(socket.remoteAddress ?? 'unknown'),
    ready: (socket, spec, slot) => {
      if (armed === 'ready') throw new Error('injected: accept threw');
      const id = `s${Math.random().toString(36).slice(2, 8)}`;
      const info: SessionInfo = {
        id,
        listener: {
          name: spec.name,
          protocol: spec.protocol,
          implicitTls: false,
          secureContext: () => undefined,
          plaintextLogin: () => true,
        },
        client: {
          address: '127.0.0.1',
          port: socket.remotePort ?? 0,
          localAddress: '127.0.0.1',
          localPort: socket.localPort ?? 0,
          session: id,
        },
      };
      if (spec.protocol === 'imap') startImapSession(socket, info, deps, slot);
      else startPop3Session(socket, info, deps, slot);
    },
    fault: (err, spec) => {
      logger.error('session fault at accept', { listener: spec.name, err });
      bus.emit({
        type: 'session.closed',
        at: new Date().toISOString(),
        session: 'accept',
        protocol: spec.protocol,
        reason: 'error',
        bytesIn: 0,
        bytesOut: 0,
        durationMs: 0,
      });
    },
  };

  before(async () => {
    backend = await echoBackend();
    for (const protocol of ['imap', 'pop3'] as const) {
      const l = await startListener(
        { name: protocol, protocol, host: '127.0.0.1', port: 0, implicitTls: false },
        new TlsProvider(),
        handlers,
      );
      listeners.push(l);
      port[protocol] = l.address.port;
    }
  });
  after(async () => {
    await Promise.all(listeners.map((l) => l.close()));
    for (const s of backend.sockets) s.destroy();
    backend.server.close();
    metrics.close();
  });

  /** a spliced IMAP session that echoes: the bystander every fault must leave alone */
  async function bystander(): Promise<RawClient> {
    const c = await RawClient.open(port.imap!);
    await c.waitFor(/^\* OK /m);
    c.send('a LOGIN good pw\r\n');
    await c.waitFor(/^a OK Logged in/m);
    return c;
  }

  async function stillWorks(c: RawClient, tag: string): Promise<void> {
    const from = c.text.length;
    c.send(`${tag} NOOP\r\n`);
    await c.waitFor(new RegExp(`^\\* ECHO ${tag} NOOP\\r\\n`, 'm'), 5000, from);
  }

  it('IMAP: a login that throws closes that connection with BYE [SERVERBUG], counted', async () => {
    const live = await bystander();
    const c = await RawClient.open(port.imap!);
    await c.waitFor(/^\* OK /m);
    c.send('a LOGIN sync-bug pw\r\n');
    await c.waitFor(/^\* BYE \[SERVERBUG\] Internal error, try again later\.\r\n/m);
    await c.waitClosed();
    assert.equal(await metricValue(metrics, 'imap'), 1);
    assert.match(
      sink.text(),
      /"msg":"session fault: closing the connection".*injected: login threw/,
    );
    const faultLine = sink.lines.find((l) => l.includes('injected: login threw'))!;
    assert.match(faultLine, /"session":"s[a-z0-9]+"/, 'logged with the session id');
    await stillWorks(live, 'n1');
    live.close();
  });

  it('POP3: a login that rejects closes that connection with -ERR [SYS/TEMP], counted', async () => {
    const live = await bystander();
    const c = await RawClient.open(port.pop3!);
    await c.waitFor(/^\+OK /m);
    c.send('USER async-bug\r\nPASS pw\r\n');
    await c.waitFor(/^-ERR \[SYS\/TEMP\] Internal error, try again later\.\r\n/m);
    await c.waitClosed();
    assert.equal(await metricValue(metrics, 'pop3'), 1);
    await stillWorks(live, 'n2');
    live.close();
  });

  it('a throw in the socket data handler closes that connection only, process alive', async () => {
    const live = await bystander();
    const idle = await RawClient.open(port.pop3!);
    await idle.waitFor(/^\+OK /m);
    const c = await RawClient.open(port.imap!);
    await c.waitFor(/^\* OK /m);
    armed = 'data';
    c.send('a CAPABILITY\r\n');
    await c.waitFor(/^\* BYE \[SERVERBUG\] /m);
    await c.waitClosed();
    armed = undefined;
    assert.equal(await metricValue(metrics, 'imap'), 2);
    await stillWorks(live, 'n3');
    idle.send('CAPA\r\n');
    await idle.waitFor(/^\+OK Capability list follows/m);
    idle.close();
    live.close();
  });

  it('a throw while splicing closes that session (reason error), others go on', async () => {
    const live = await bystander();
    const closed = new Promise<string>((resolve) =>
      bus.on('session.closed', (e) => e.reason === 'error' && resolve(e.session)),
    );
    const c = await RawClient.open(port.imap!);
    await c.waitFor(/^\* OK /m);
    armed = 'track';
    c.send('a LOGIN good pw\r\n');
    await c.waitClosed();
    armed = undefined;
    assert.match(await closed, /^s/);
    assert.equal(await metricValue(metrics, 'imap'), 3);
    await stillWorks(live, 'n4');
    live.close();
  });

  it('a throw at accept closes that connection and gives its slot back', async () => {
    const live = await bystander();
    const before = limiter.open;
    armed = 'ready';
    const c = await RawClient.open(port.pop3!);
    await c.waitClosed();
    armed = undefined;
    assert.equal(await metricValue(metrics, 'pop3'), 2);
    assert.equal(limiter.open, before, 'the faulty connection holds no slot');
    await stillWorks(live, 'n5');
    live.close();
  });
});

describe('containment: SMTP', { timeout: 60_000 }, () => {
  const lab: GatewayLab = {
    domains: ['example.org'],
    source: { urls: { imap: 'imap://127.0.0.1:1?tls=none' } },
    destination: { urls: { imap: 'imap://127.0.0.1:1?tls=none', lmtp: 'lmtp://127.0.0.1:1' } },
    mta: { url: 'smtp://127.0.0.1:1?tls=none' },
  };
  const bus = new EventBus();
  const metrics = createGatewayMetrics({
    bus,
    store: { counts: async () => zeroCounts() },
    defaultMetrics: false,
  });
  let armed = false;
  let gw: TestGateway;
  before(async () => {
    gw = await startGatewaySmtp(lab, {
      deps: {
        bus,
        // called by the onConnect handler, inside smtp-server's socket callbacks
        stopping: () => {
          if (armed) throw new Error('injected: onConnect threw');
          return false;
        },
      },
    });
  });
  after(async () => {
    await gw?.stop();
    metrics.close();
  });

  it('a throw in a handler answers 421 4.3.0 and closes that connection only', async () => {
    const live = await SmtpDialog.open(gw.port());
    assert.match(await live.reply(), /^220 /);
    armed = true;
    const d = await SmtpDialog.open(gw.port());
    assert.match(await d.reply(), /^421 4\.3\.0 Internal error/);
    assert.equal(await d.reply(), '', 'closed after the 421');
    armed = false;
    assert.match(gw.logText(), /session fault: closing the connection.*injected: onConnect threw/);
    assert.match(await live.cmd('EHLO client.test'), /^250[- ]/);
    assert.match(await live.cmd('MAIL FROM:<a@client.test>'), /^250 /);
    assert.match(await live.cmd('QUIT'), /^221 /);
    const d2 = await SmtpDialog.open(gw.port());
    assert.match(await d2.reply(), /^220 /);
    d2.close();
  });

  it('a fault is counted once its connection closed', async () => {
    // smtp-server reports the close of a connection its onConnect refused
    const deadline = Date.now() + 5000;
    while ((await metricValue(metrics, 'smtp')) === 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    assert.equal(await metricValue(metrics, 'smtp'), 1);
  });
});
