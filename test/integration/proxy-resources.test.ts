/**
 * Connection slots under churn, with TLS: a connection takes a slot at TCP accept and
 * gives it back exactly once however it ends (LOGOUT after STARTTLS, a failed handshake,
 * a close before the greeting, a handshake never started, the login deadline). The limit
 * per client is small (5), so a single leaked slot per session shows within a few
 * sessions as "Too many connections".
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { ConnectionLimiter } from '../../src/core/listen/connection-limiter.js';
import type { Gateway } from '../../src/core/gateway/gateway.js';
import { testTls, type TestTls } from '../support/index.js';
import { FAST_BRAKES, RawClient, startProxyLab, type ProxyLab } from './proxy-support.js';
import { SmtpDialog, startGatewaySmtp, type GatewayLab, type TestGateway } from './smtp-support.js';

const USER = 'alice@example.org';
const PASS = 'alice-secret';
const SESSIONS = 50;
const PER_CLIENT = 5;

/** Resolve once `cond` holds; fail after `ms` (a bounded poll). */
async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`still not: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** STARTTLS/STLS on a plain connection once `go` was answered with `ok`. */
async function upgrade(raw: RawClient, go: string, ok: RegExp, t: TestTls): Promise<RawClient> {
  raw.send(go);
  await raw.waitFor(ok);
  const plain = raw.socket;
  plain.removeAllListeners('data');
  plain.removeAllListeners('close');
  const secure = tlsConnect({ socket: plain, ca: t.ca, servername: 'localhost' });
  await new Promise<void>((resolve, reject) => {
    secure.once('secureConnect', () => resolve());
    secure.once('error', reject);
  });
  return new RawClient(secure);
}

async function imapSession(c: RawClient): Promise<void> {
  c.send(`b LOGIN ${USER} ${PASS}\r\n`);
  await c.waitFor(/^b OK /m);
  c.send('c LOGOUT\r\n');
  await c.waitFor(/^c OK /m);
  await c.waitClosed();
}

async function pop3Session(c: RawClient): Promise<void> {
  c.send(`USER ${USER}\r\n`);
  await c.waitFor(/^\+OK\r\n/m);
  c.send(`PASS ${PASS}\r\n`);
  await c.waitFor(/^\+OK Logged in/m);
  c.send('QUIT\r\n');
  await c.waitClosed();
}

/** A TCP connection that never says anything (no TLS handshake either). */
function silent(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1' }, () => resolve(s));
    s.once('error', reject);
  });
}

function closed(s: Socket): Promise<void> {
  return s.destroyed ? Promise.resolve() : new Promise((r) => s.once('close', () => r()));
}

describe('connection slots (IMAP, POP3)', { timeout: 240_000 }, () => {
  let p: ProxyLab;
  let g: Gateway;
  let t: TestTls;
  before(async () => {
    t = await testTls();
    p = await startProxyLab({
      tls: true,
      deps: {
        limits: { ...FAST_BRAKES, connections: { maxPerAddress: PER_CLIENT, handshakeMs: 1000 } },
      },
    });
    g = p.gateway;
  });
  after(async () => {
    await p?.stop();
  });

  it(`IMAP: ${SESSIONS} STARTTLS sessions in a row, all spliced; no slot left`, async () => {
    for (let i = 0; i < SESSIONS; i++) {
      const raw = await RawClient.open(g.listeners.imap!.port);
      await raw.waitFor(/^\* OK .*STARTTLS/m);
      await imapSession(await upgrade(raw, 'a STARTTLS\r\n', /^a OK /m, t));
    }
    await until(() => g.connections.open === 0, 'all IMAP slots back');
  });

  it(`POP3: ${SESSIONS} STLS sessions in a row; no slot left`, async () => {
    for (let i = 0; i < SESSIONS; i++) {
      const raw = await RawClient.open(g.listeners.pop3!.port);
      await raw.waitFor(/^\+OK /m);
      await pop3Session(await upgrade(raw, 'STLS\r\n', /^\+OK Begin TLS/m, t));
    }
    await until(() => g.connections.open === 0, 'all POP3 slots back');
  });

  it(`IMAPS and POP3S: ${SESSIONS} sessions each; no slot left`, async () => {
    for (let i = 0; i < SESSIONS; i++) {
      const c = await RawClient.open(g.listeners.imaps!.port, t);
      await c.waitFor(/^\* OK /m);
      await imapSession(c);
      const d = await RawClient.open(g.listeners.pop3s!.port, t);
      await d.waitFor(/^\+OK /m);
      await pop3Session(d);
    }
    await until(() => g.connections.open === 0, 'all implicit-TLS slots back');
  });

  it('failed STARTTLS handshakes and closes before the greeting give their slot back', async () => {
    for (let i = 0; i < 20; i++) {
      const raw = await RawClient.open(g.listeners.imap!.port);
      raw.send('a STARTTLS\r\n');
      await raw.waitFor(/^a OK /m);
      raw.send('this is no TLS ClientHello\r\n');
      await raw.waitClosed();
      const gone = await silent(g.listeners.pop3!.port);
      gone.destroy();
      const bad = await silent(g.listeners.imaps!.port);
      bad.end('no ClientHello either\r\n');
      await closed(bad);
    }
    await until(() => g.connections.open === 0, 'slots of failed connections back');
    const c = await RawClient.open(g.listeners.imap!.port);
    await c.waitFor(/^\* OK /m);
    await imapSession(c);
  });

  it('an implicit-TLS connection counts from accept; an unfinished handshake is cut', async () => {
    const held = await Promise.all(
      Array.from({ length: PER_CLIENT }, () => silent(g.listeners.imaps!.port)),
    );
    await until(() => g.connections.open === PER_CLIENT, 'handshakes counted at accept');
    const extra = await silent(g.listeners.pop3s!.port);
    await closed(extra); // refused at once: over the limit before any handshake
    const plain = await RawClient.open(g.listeners.imap!.port);
    await plain.waitFor(/^\* BYE \[UNAVAILABLE\] Too many connections/m);
    // handshakeMs (1 s) cuts them; their slots come back
    await Promise.all(held.map(closed));
    await until(() => g.connections.open === 0, 'slots of cut handshakes back');
  });

  it('the login deadline ends a busy client that never logs in, and frees its slot', async () => {
    const g2 = await p.another({
      limits: { ...FAST_BRAKES, preauth: { loginDeadlineMs: 1500 } },
    });
    const imap = await RawClient.open(g2.listeners.imap!.port);
    const pop3 = await RawClient.open(g2.listeners.pop3!.port);
    await imap.waitFor(/^\* OK /m);
    await pop3.waitFor(/^\+OK /m);
    // a byte every 100 ms keeps the idle timer (60 s) from ever firing; bounded at 100
    for (let i = 0; i < 100 && !(imap.closed && pop3.closed); i++) {
      if (!imap.closed) imap.send(`n${i} NOOP\r\n`);
      if (!pop3.closed) pop3.send('CAPA\r\n');
      await new Promise((r) => setTimeout(r, 100));
    }
    await imap.waitFor(/^\* BYE \[UNAVAILABLE\] Login time limit reached\.\r\n/m);
    await pop3.waitFor(/^-ERR \[SYS\/TEMP\] Login time limit reached\.\r\n/m);
    await imap.waitClosed();
    await pop3.waitClosed();
    await until(() => g2.connections.open === 0, 'deadline slots back');
    await g2.stop(0);
  });
});

describe('connection slots (SMTP submission and submissions)', { timeout: 120_000 }, () => {
  const lab: GatewayLab = {
    domains: ['example.org'],
    source: { urls: { imap: 'imap://127.0.0.1:1?tls=none' } },
    destination: { urls: { imap: 'imap://127.0.0.1:1?tls=none', lmtp: 'lmtp://127.0.0.1:1' } },
    mta: { url: 'smtp://127.0.0.1:1?tls=none' },
  };
  const limiter = new ConnectionLimiter(() => ({ maxTotal: 100, maxPerAddress: PER_CLIENT }));
  let gw: TestGateway;
  before(async () => {
    gw = await startGatewaySmtp(lab, {
      listen: ['submission', 'submissions'],
      tls: true,
      deps: { connections: limiter, limits: { clientIdleMs: 1000 } },
    });
  });
  after(async () => {
    await gw?.stop();
  });

  it(`${SESSIONS} STARTTLS sessions on 587 and ${SESSIONS} on 465; no slot left`, async () => {
    for (let i = 0; i < SESSIONS; i++) {
      const d = await SmtpDialog.open(gw.port('submission'));
      assert.match(await d.reply(), /^220 /);
      assert.match(await d.cmd('EHLO client.test'), /STARTTLS/);
      assert.match(await d.cmd('STARTTLS'), /^220 /);
      await d.startTls();
      assert.match(await d.cmd('EHLO client.test'), /^250[- ]/);
      assert.match(await d.cmd('QUIT'), /^221 /);
      const s = await SmtpDialog.open(gw.port('submissions'), { tls: true });
      assert.match(await s.reply(), /^220 /);
      assert.match(await s.cmd('QUIT'), /^221 /);
    }
    await until(() => limiter.open === 0, 'all SMTP slots back');
  });

  it('465 counts from accept: handshakes beyond the limit are refused, unfinished ones cut', async () => {
    const held = await Promise.all(
      Array.from({ length: PER_CLIENT }, () => silent(gw.port('submissions'))),
    );
    await until(() => limiter.open === PER_CLIENT, 'handshakes counted at accept');
    const d = await SmtpDialog.open(gw.port('submission'));
    assert.match(await d.reply(), /^421 4\.7\.0 Too many connections/);
    await Promise.all(held.map(closed));
    await until(() => limiter.open === 0, 'slots of cut handshakes back');
  });
});
