/**
 * The SMTP front end against clients that hold a connection without moving mail: the
 * login deadline on submission (accept to AUTH) and the junk-command cap on every
 * listener. Both answer `421 4.7.0` and close, and the connection slot comes back. The
 * gateway relays to a real Postfix (port 25) and checks AUTH against a real Postfix
 * submission service over Dovecot SASL; the hostile client is a raw socket.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ConnectionLimiter } from '../../src/core/listen/connection-limiter.js';
import type { Credentials, PostfixInstance } from '../support/index.js';
import {
  mail,
  SmtpDialog,
  startGatewaySmtp,
  startSmtpLab,
  startSubmissionMta,
  type SmtpLab,
  type TestGateway,
} from './smtp-support.js';

const D = 'example.org';
const bob: Credentials = { user: `bob@${D}`, password: 'bob-secret' };
const dan: Credentials = { user: `dan@${D}`, password: 'dan-secret' };
const DEADLINE_MS = 1000;
const MAX_JUNK = 5;
const MAX_ERRORS = 4;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resolve once `cond` holds; fail after `ms` (a bounded poll). */
async function until(cond: () => boolean, what: string, ms = 8000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`still not: ${what}`);
    await sleep(20);
  }
}

/** MAIL, RCPT, DATA and the message: the reply to the end of data. */
async function send(d: SmtpDialog, marker: string): Promise<string> {
  assert.match(await d.cmd(`MAIL FROM:<${bob.user}>`), /^250 /);
  assert.match(await d.cmd(`RCPT TO:<${dan.user}>`), /^250 /);
  assert.match(await d.cmd('DATA'), /^354 /);
  return d.cmd(`${mail(bob.user, dan.user, marker)}.`);
}

/** How the gateway closed the SMTP sessions from `client` (session.closed reasons). */
function closedReasons(gw: TestGateway, client: string): string[] {
  const mine = new Set(
    gw.events.flatMap((e) =>
      e.type === 'session.opened' && e.client.address === client ? [e.session] : [],
    ),
  );
  return gw.events.flatMap((e) =>
    e.type === 'session.closed' && mine.has(e.session) ? [e.reason] : [],
  );
}

describe('SMTP cut-offs: login deadline and junk commands', { timeout: 120_000 }, () => {
  let env: SmtpLab;
  let sub: PostfixInstance;
  let gw: TestGateway;
  const limiter = new ConnectionLimiter(() => ({ maxTotal: 100, maxPerAddress: 5 }));

  before(async () => {
    env = await startSmtpLab({ users: [bob, dan] });
    sub = await startSubmissionMta('src-sub', env.lab.source, env.sasl.source, env.lab, [bob, dan]);
    gw = await startGatewaySmtp(env.lab, {
      listen: ['smtp', 'submission'],
      sourceSubmission: `submission://127.0.0.1:${sub.port}?tls=starttls&servername=localhost`,
      deps: {
        connections: limiter,
        limits: { loginDeadlineMs: DEADLINE_MS, maxJunkCommands: MAX_JUNK, maxErrors: MAX_ERRORS },
      },
    });
  });
  after(async () => {
    await gw?.stop();
    await sub?.stop();
    await env?.stop();
  });

  it('submission: a busy client that never authenticates gets 421 4.7.0 at the deadline, and its slot back', async () => {
    const CLIENT = '127.0.0.3';
    const started = Date.now();
    const d = await SmtpDialog.open(gw.port('submission'), { localAddress: CLIENT });
    assert.match(await d.reply(), /^220 /);
    assert.match(await d.cmd('EHLO hostile.test'), /^250[- ]/);
    await until(() => limiter.open === 1, 'the connection holds a slot');
    // busy, so the idle timeout (5 min) never fires; fewer commands than either cap
    for (let i = 0; i < 3; i++) {
      await sleep(DEADLINE_MS / 4);
      assert.match(await d.cmd('NOOP'), /^250 /);
    }
    assert.equal(await d.reply(5000), '421 4.7.0 Login time limit reached');
    const ms = Date.now() - started;
    assert.ok(ms >= DEADLINE_MS && ms < DEADLINE_MS + 3000, `cut after ${ms} ms`);
    await until(() => d.closed, 'the gateway closed the connection');
    await until(() => limiter.open === 0, 'the slot is back');
    await until(() => closedReasons(gw, CLIENT).length > 0, 'session.closed');
    assert.deepEqual(closedReasons(gw, CLIENT), ['preauth-timeout']);
    assert.match(
      gw.logText(),
      /"msg":"connection closed: not authenticated within the deadline".*"client":"127\.0\.0\.3"/,
    );
  });

  it('submission: a client that authenticates in time stays past the deadline and sends', async () => {
    const d = await SmtpDialog.open(gw.port('submission'));
    try {
      assert.match(await d.reply(), /^220 /);
      assert.match(await d.cmd('EHLO client.test'), /^250[- ]/);
      const plain = Buffer.from(`\0${bob.user}\0${bob.password}`).toString('base64');
      assert.match(await d.cmd(`AUTH PLAIN ${plain}`), /^235 /);
      await sleep(DEADLINE_MS * 1.5);
      assert.match(await d.cmd('NOOP'), /^250 /);
      assert.match(await send(d, 'authenticated-in-time'), /^250 /);
      assert.match(await d.cmd('QUIT'), /^221 /);
    } finally {
      d.close();
    }
  });

  it('port 25: no AUTH, no deadline', async () => {
    const d = await SmtpDialog.open(gw.port('smtp'));
    try {
      assert.match(await d.reply(), /^220 /);
      assert.match(await d.cmd('EHLO mx.client.test'), /^250[- ]/);
      await sleep(DEADLINE_MS * 1.5);
      assert.match(await d.cmd('NOOP'), /^250 /);
      assert.match(await send(d, 'port-25-past-deadline'), /^250 /);
      assert.match(await d.cmd('QUIT'), /^221 /);
    } finally {
      d.close();
    }
  });

  it(`junk commands beyond ${MAX_JUNK} since the last message get 421 4.7.0 and close`, async () => {
    const CLIENT = '127.0.0.4';
    const d = await SmtpDialog.open(gw.port('smtp'), { localAddress: CLIENT });
    assert.match(await d.reply(), /^220 /);
    assert.match(await d.cmd('EHLO mx.client.test'), /^250[- ]/);
    for (const c of ['NOOP', 'RSET', 'HELP', 'NOOP']) assert.match(await d.cmd(c), /^2\d\d /);
    // an accepted message starts the count again (as Postfix's smtpd_junk_command_limit)
    assert.match(await send(d, 'junk-count-reset'), /^250 /);
    for (const c of ['RSET', 'VRFY <dan@example.org>', 'NOOP', 'EHLO again.test', 'NOOP'])
      assert.match(await d.cmd(c), /^2\d\d[ -]/);
    assert.equal(await d.cmd('NOOP'), '421 4.7.0 Too many commands without a message');
    await until(() => d.closed, 'the gateway closed the connection');
    await until(() => limiter.open === 0, 'the slot is back');
    await until(() => closedReasons(gw, CLIENT).length > 0, 'session.closed');
    assert.deepEqual(closedReasons(gw, CLIENT), ['protocol-error']);
    assert.match(
      gw.logText(),
      /"msg":"connection closed: too many commands without a message".*"client":"127\.0\.0\.4"/,
    );
  });

  it(`refused commands beyond ${MAX_ERRORS} since the last message get 421 4.7.0 and close`, async () => {
    const CLIENT = '127.0.0.5';
    const d = await SmtpDialog.open(gw.port('smtp'), { localAddress: CLIENT });
    assert.match(await d.reply(), /^220 /);
    assert.match(await d.cmd('EHLO mx.client.test'), /^250[- ]/);
    // RCPT before MAIL is refused (RFC 5321 4.1.4: 503): a client can repeat it for ever
    for (let i = 0; i < 3; i++) assert.match(await d.cmd(`RCPT TO:<${dan.user}>`), /^503 /);
    // an accepted message starts the count again (as Postfix's smtpd_hard_error_limit)
    assert.match(await send(d, 'error-count-reset'), /^250 /);
    for (let i = 0; i < MAX_ERRORS; i++)
      assert.match(await d.cmd(`RCPT TO:<${dan.user}>`), /^503 /);
    // the refusal that goes past the limit is read, then the 421
    assert.match(await d.cmd(`RCPT TO:<${dan.user}>`), /^503 /);
    assert.equal(await d.reply(), '421 4.7.0 Too many errors');
    await until(() => d.closed, 'the gateway closed the connection');
    await until(() => limiter.open === 0, 'the slot is back');
    await until(() => closedReasons(gw, CLIENT).length > 0, 'session.closed');
    assert.deepEqual(closedReasons(gw, CLIENT), ['protocol-error']);
    assert.match(
      gw.logText(),
      /"msg":"connection closed: too many errors without a message".*"client":"127\.0\.0\.5"/,
    );
  });
});
