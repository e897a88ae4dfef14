/**
 * The gateway behind a real HAProxy (send-proxy = PROXY protocol v1, send-proxy-v2) in
 * front of real Dovecot (IMAP) and a real Postfix submission service: a client that
 * connects to HAProxy from 127.0.0.7 is 127.0.0.7 in the gateway's session log and at the
 * backend (Dovecot's rip= from IMAP ID x-originating-ip, Postfix's client= from XCLIENT).
 * On a PROXY protocol listener a connection without a header, or from an address not in
 * proxyProtocol.trusted, is closed before a greeting.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import nodemailer from 'nodemailer';
import { ProxyGate } from '../../src/core/listen/proxy-gate.js';
import {
  createGatewayMetrics,
  type GatewayMetrics,
} from '../../src/core/metrics/gateway-metrics.js';
import { DEFAULT_LIMITS } from '../../src/core/limits.js';
import { startHaproxy, type HaproxyInstance } from '../support/haproxy.js';
import type { Credentials, PostfixInstance } from '../support/index.js';
import { readIfExists, startProxyLab, type ProxyLab } from './proxy-support.js';
import {
  mail,
  startGatewaySmtp,
  startSmtpLab,
  startSubmissionMta,
  waitForInbox,
  count,
  type SmtpLab,
  type TestGateway,
} from './smtp-support.js';

const CLIENT = '127.0.0.7';

/** Connect from `from`, send `send` after the greeting, and collect replies until `until`. */
function exchange(
  port: number,
  from: string,
  send: string,
  until: RegExp,
  timeoutMs = 4000,
): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1', localAddress: from });
    let text = '';
    let sent = false;
    const done = (closed: boolean): void => {
      clearTimeout(timer);
      s.destroy();
      resolve({ text, closed });
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    s.setEncoding('latin1');
    s.on('error', () => undefined);
    s.on('data', (d: string) => {
      text += d;
      if (!sent) {
        sent = true;
        s.write(send);
      }
      if (until.test(text)) done(false);
    });
    s.on('close', () => done(true));
  });
}

/** Write `line` at connect, before any greeting, then wait for the close. */
function speakFirst(
  port: number,
  from: string,
  line: string,
): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1', localAddress: from }, () => s.write(line));
    let text = '';
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ text, closed: false });
    }, 8000);
    s.setEncoding('latin1');
    s.on('error', () => undefined);
    s.on('data', (d: string) => (text += d));
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ text, closed: true });
    });
  });
}

/** The value of autoport_proxy_refused_total for a listener and reason (0 when absent). */
async function refusedCount(m: GatewayMetrics, listener: string, reason: string): Promise<number> {
  const line = new RegExp(
    `^autoport_proxy_refused_total\\{listener="${listener}",reason="${reason}"\\} (\\d+)$`,
    'm',
  );
  return Number(line.exec(await m.render())?.[1] ?? 0);
}

async function until<T>(what: () => T | undefined, ms = 5000): Promise<T | undefined> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = what();
    if (v || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('PROXY protocol: IMAP behind HAProxy', () => {
  let p: ProxyLab;
  let hap: HaproxyInstance;
  let user: Credentials;
  let metrics: GatewayMetrics;

  before(async () => {
    p = await startProxyLab({
      lab: { sourceQuirks: { trustedNetworks: '127.0.0.1/32' } },
      config: {
        proxyProtocol: { listeners: ['imap'], trusted: ['127.0.0.1'] },
      },
      deps: { limits: { brakes: { failureDelayMs: 50 }, connections: { proxyHeaderMs: 1000 } } },
    });
    user = p.lab.users[0]!;
    metrics = createGatewayMetrics({ bus: p.bus, store: p.store, defaultMetrics: false });
    hap = await startHaproxy([
      { name: 'v1', to: { host: '127.0.0.1', port: p.imapPort }, proxy: 'v1' },
      { name: 'v2', to: { host: '127.0.0.1', port: p.imapPort }, proxy: 'v2' },
    ]);
  });
  after(async () => {
    metrics?.close();
    await hap?.stop();
    await p?.stop();
  });

  for (const version of ['v1', 'v2'] as const) {
    it(`send-proxy${version === 'v2' ? '-v2' : ''}: the client's address reaches the session log and Dovecot`, async () => {
      const tag = `P${version}`;
      const r = await exchange(
        hap.ports[version]!,
        CLIENT,
        `${tag} LOGIN "${user.user}" "${user.password}"\r\n${tag}b LOGOUT\r\n`,
        new RegExp(`^${tag}b OK`, 'm'),
      );
      assert.match(r.text, /^\* OK/);
      assert.match(r.text, new RegExp(`^${tag} OK`, 'm'));
      await p.sessionLog.flush();
      const opened = await until(() =>
        readIfExists(join(p.config.logDir, 'sessions.jsonl'))
          .split('\n')
          .filter((l) => l.includes('"session.opened"') && l.includes(`"${CLIENT}"`)),
      );
      assert.ok(opened && opened.length > 0, 'session.opened from 127.0.0.7');
      const rip = await until(() => {
        const log = readFileSync(p.lab.source.logFile, 'utf8');
        const n =
          log.match(/imap-login: Info: Login: user=<[^>]+>.*rip=127\.0\.0\.7/g)?.length ?? 0;
        return n >= (version === 'v1' ? 1 : 2) ? n : undefined;
      });
      assert.ok(rip, 'Dovecot logged rip=127.0.0.7 (x-originating-ip)');
      assert.doesNotMatch(
        readFileSync(p.lab.source.logFile, 'utf8'),
        /Login: user=<[^>]+>.*rip=127\.0\.0\.1,/,
      );
    });
  }

  it('a connection without a header is closed before a greeting, and counted', async () => {
    const before = await refusedCount(metrics, 'imap', 'bad-header');
    const direct = await speakFirst(p.imapPort, '127.0.0.1', 'A1 CAPABILITY\r\n');
    assert.equal(direct.text, '');
    assert.ok(direct.closed);
    assert.match(p.logText(), /"detail":"no PROXY protocol header"/);
    assert.equal(await refusedCount(metrics, 'imap', 'bad-header'), before + 1);
  });

  it('an address not in proxyProtocol.trusted is closed before a greeting, even with a header', async () => {
    const before = await refusedCount(metrics, 'imap', 'untrusted');
    const forged = await speakFirst(
      p.imapPort,
      CLIENT,
      'PROXY TCP4 192.0.2.1 127.0.0.1 5000 143\r\nA1 CAPABILITY\r\n',
    );
    assert.equal(forged.text, '');
    assert.ok(forged.closed);
    assert.match(
      p.logText(),
      /"proxy":"127\.0\.0\.7".*"reason":"untrusted"|"reason":"untrusted".*"proxy":"127\.0\.0\.7"/,
    );
    assert.equal(await refusedCount(metrics, 'imap', 'untrusted'), before + 1);
  });

  it('a reload changes who may send a header', async () => {
    p.gateway.reload({
      ...p.config,
      proxyProtocol: { listeners: ['imap'], trusted: ['10.0.0.0/8'] },
    });
    try {
      const r = await speakFirst(hap.ports.v2!, CLIENT, '');
      assert.equal(r.text, '');
      assert.ok(r.closed);
    } finally {
      p.gateway.reload(p.config);
    }
    const again = await exchange(hap.ports.v1!, CLIENT, 'R1 LOGOUT\r\n', /^R1 OK/m);
    assert.match(again.text, /^\* OK/);
  });
});

describe('PROXY protocol: submission behind HAProxy', () => {
  const dan: Credentials = { user: 'dan@example.org', password: 'dan-secret' };
  const bob: Credentials = { user: 'bob@example.org', password: 'bob-secret' };
  let env: SmtpLab;
  let sub: PostfixInstance;
  let gw: TestGateway;
  let hap: HaproxyInstance;

  before(async () => {
    env = await startSmtpLab({ users: [bob, dan] });
    sub = await startSubmissionMta('src-sub', env.lab.source, env.sasl.source, env.lab, [bob, dan]);
    gw = await startGatewaySmtp(env.lab, {
      listen: ['submission'],
      sourceSubmission: `submission://127.0.0.1:${sub.port}?tls=starttls&servername=localhost`,
      deps: {
        proxy: {
          gate: new ProxyGate(['127.0.0.1'], () => DEFAULT_LIMITS.connections),
          listeners: ['submission'],
        },
      },
    });
    hap = await startHaproxy([
      { name: 'v1', to: { host: '127.0.0.1', port: gw.port('submission') }, proxy: 'v1' },
      { name: 'v2', to: { host: '127.0.0.1', port: gw.port('submission') }, proxy: 'v2' },
    ]);
  });
  after(async () => {
    await hap?.stop();
    await gw?.stop();
    await sub?.stop();
    await env?.stop();
  });

  for (const version of ['v1', 'v2'] as const) {
    it(`send-proxy${version === 'v2' ? '-v2' : ''}: XCLIENT gives Postfix 127.0.0.7`, async () => {
      const subject = `via-haproxy-${version}`;
      const t = nodemailer.createTransport({
        host: '127.0.0.1',
        port: hap.ports[version]!,
        secure: false,
        localAddress: CLIENT,
        auth: { user: bob.user, pass: bob.password },
      });
      const info = await t.sendMail({
        envelope: { from: bob.user, to: [dan.user] },
        raw: mail(bob.user, dan.user, subject),
      });
      t.close();
      assert.deepEqual(info.accepted, [dan.user]);
      const msgs = await waitForInbox(env.lab.source, dan, (m) => count(m, subject) > 0);
      assert.equal(count(msgs, subject), 1);
      assert.match(
        readFileSync(sub.logFile, 'utf8'),
        /client=unknown\[127\.0\.0\.7\], sasl_method=PLAIN, sasl_username=bob@example\.org/,
      );
      const opened = gw.events.filter(
        (e) => e.type === 'session.opened' && e.client.address === CLIENT,
      );
      assert.ok(opened.length >= (version === 'v1' ? 1 : 2), 'session.opened from 127.0.0.7');
      const log = await gw.relayLog();
      assert.ok(log.some((e) => e.client === CLIENT && String(e.messageId).includes(subject)));
    });
  }

  it('a connection without a header, or from an untrusted address, gets no greeting', async () => {
    const direct = await speakFirst(gw.port('submission'), '127.0.0.1', 'EHLO x\r\n');
    assert.equal(direct.text, '');
    assert.ok(direct.closed);
    const untrusted = await speakFirst(gw.port('submission'), CLIENT, 'PROXY UNKNOWN\r\n');
    assert.equal(untrusted.text, '');
    assert.ok(untrusted.closed);
    assert.match(gw.logText(), /"reason":"untrusted"/);
    assert.match(gw.logText(), /"detail":"no PROXY protocol header"/);
    const metrics = createGatewayMetrics({ bus: gw.bus, store: gw.store, defaultMetrics: false });
    try {
      await speakFirst(gw.port('submission'), '127.0.0.1', 'EHLO x\r\n');
      await speakFirst(gw.port('submission'), CLIENT, 'PROXY UNKNOWN\r\n');
      await speakFirst(gw.port('submission'), CLIENT, 'PROXY UNKNOWN\r\n');
      assert.equal(await refusedCount(metrics, 'submission', 'bad-header'), 1);
      assert.equal(await refusedCount(metrics, 'submission', 'untrusted'), 2);
    } finally {
      metrics.close();
    }
  });
});
