/**
 * Submission (587 STARTTLS, 465 implicit TLS) end to end: AUTH is checked at the
 * account's home, a real Postfix submission service per side (SASL against that side's
 * Dovecot, STARTTLS with a verified certificate, XCLIENT), mail read back over IMAP.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import nodemailer from 'nodemailer';
import { openText } from '../../src/core/state/index.js';
import { testTls, type Credentials, type PostfixInstance } from '../support/index.js';
import {
  count,
  mail,
  SmtpDialog,
  startGatewaySmtp,
  startSmtpLab,
  startSubmissionMta,
  waitForInbox,
  type SmtpLab,
  type TestGateway,
} from './smtp-support.js';

const run = promisify(execFile);
const D = 'example.org';
const alice: Credentials = { user: `alice@${D}`, password: 'alice-secret' }; // migrated
const bob: Credentials = { user: `bob@${D}`, password: 'bob-secret' }; // never seen
const carol: Credentials = { user: `carol@${D}`, password: 'carol-secret' }; // transferring
const dan: Credentials = { user: `dan@${D}`, password: 'dan-secret' };
const erin: Credentials = { user: `erin@${D}`, password: 'erin-secret' };

let env: SmtpLab;
let srcSub: PostfixInstance;
let dstSub: PostfixInstance;
let gw: TestGateway;

function authFailures(mta: PostfixInstance): number {
  return (
    readFileSync(mta.logFile, 'utf8').match(/SASL (PLAIN|LOGIN) authentication failed/g) ?? []
  ).length;
}

async function gatewayWith(
  over: Parameters<typeof startGatewaySmtp>[1] = {},
): Promise<TestGateway> {
  const g = await startGatewaySmtp(env.lab, {
    tls: true,
    listen: ['submission', 'submissions'],
    sourceSubmission: `submission://127.0.0.1:${srcSub.port}?tls=starttls&servername=localhost`,
    destinationSubmission: `submission://127.0.0.1:${dstSub.port}?tls=starttls&servername=localhost`,
    brakes: { failureDelayMs: 300, maxFailuresPerAccount: 2 },
    ...over,
  });
  g.store.upsert(alice.user, { state: 'migrated' });
  g.store.upsert(carol.user, { state: 'transferring' });
  return g;
}

describe('SMTP gateway, submission', { timeout: 120_000 }, () => {
  before(async () => {
    env = await startSmtpLab({
      users: [alice, bob, carol, dan, erin],
      destinationUsers: [alice, erin],
    });
    [srcSub, dstSub] = await Promise.all([
      startSubmissionMta('srcsub', env.lab.source, env.sasl.source, env.lab, [
        alice,
        bob,
        carol,
        dan,
        erin,
      ]),
      startSubmissionMta('dstsub', env.lab.destination, env.sasl.destination, env.lab, [
        alice,
        erin,
      ]),
    ]);
    gw = await gatewayWith();
  });
  after(async () => {
    await gw?.stop();
    await Promise.all([srcSub?.stop(), dstSub?.stop()]);
    await env?.stop();
  });

  it('relays a first submission through the source (587, STARTTLS) and captures the account', async () => {
    const ca = (await testTls()).ca;
    const t = nodemailer.createTransport({
      host: '127.0.0.1',
      port: gw.port('submission'),
      secure: false,
      requireTLS: true,
      localAddress: '127.0.0.2',
      tls: { ca, servername: 'localhost' },
      auth: { user: bob.user, pass: bob.password },
    });
    const info = await t.sendMail({
      envelope: { from: bob.user, to: [dan.user] },
      raw: mail(bob.user, dan.user, 'submitted-587'),
    });
    t.close();
    assert.deepEqual(info.accepted, [dan.user]);
    assert.match(info.response, /^250 .*queued/);
    const msgs = await waitForInbox(env.lab.source, dan, (m) => count(m, 'submitted-587') > 0);
    assert.equal(count(msgs, 'submitted-587'), 1);
    // The source's submission service saw the user and the real client (XCLIENT).
    assert.match(
      readFileSync(srcSub.logFile, 'utf8'),
      /client=unknown\[127\.0\.0\.2\], sasl_method=PLAIN, sasl_username=bob@example\.org/,
    );
    const rec = gw.store.get(bob.user)!;
    assert.equal(rec.state, 'captured');
    assert.equal(openText(gw.keyring, rec.credentials!, bob.user), bob.password);
    assert.ok(gw.events.some((e) => e.type === 'account.captured' && e.address === bob.user));
    const log = await gw.relayLog();
    const entry = log.find((e) => e.messageId === '<submitted-587@test>')!;
    assert.equal(entry.user, bob.user);
    assert.equal(entry.route, 'source');
    assert.equal(entry.listener, 'submission');
    assert.equal(entry.client, '127.0.0.2');
  });

  it("relays a migrated account's submission through the destination (465, swaks)", async () => {
    const r = await run(
      'swaks',
      [
        '--server',
        `127.0.0.1:${gw.port('submissions')}`,
        '--tls-on-connect',
        '--auth',
        'LOGIN',
        '--auth-user',
        alice.user,
        '--auth-password',
        alice.password,
        '--from',
        alice.user,
        '--to',
        erin.user,
        '--header',
        'Subject: submitted-465',
      ],
      { encoding: 'utf8' },
    );
    assert.match(r.stdout, /<~ {2}235 /);
    assert.match(r.stdout, /<~ {2}250 .*queued/);
    const msgs = await waitForInbox(
      env.lab.destination,
      erin,
      (m) => count(m, 'submitted-465') > 0,
    );
    assert.equal(count(msgs, 'submitted-465'), 1);
    assert.match(readFileSync(dstSub.logFile, 'utf8'), /sasl_username=alice@example\.org/);
    assert.doesNotMatch(
      readFileSync(srcSub.logFile, 'utf8'),
      /sasl_username=alice@example\.org/,
      'the source is not asked again',
    );
    assert.equal(
      gw.store.get(alice.user)!.credentials,
      undefined,
      'nothing captured for a migrated account',
    );
  });

  it('refuses a wrong password with 535 5.7.8 after a delay, then brakes without asking the source', async () => {
    const before = authFailures(srcSub);
    const d = await SmtpDialog.open(gw.port('submission'));
    try {
      await d.reply();
      await d.cmd('EHLO x.test');
      assert.match(await d.cmd('STARTTLS'), /^220 /);
      await d.startTls();
      await d.cmd('EHLO x.test');
      const token = (p: string) => Buffer.from(`\0${dan.user}\0${p}`).toString('base64');
      for (let i = 0; i < 2; i++) {
        const t0 = Date.now();
        assert.match(await d.cmd(`AUTH PLAIN ${token('wrong')}`), /^535 5\.7\.8 /);
        assert.ok(Date.now() - t0 >= 280, 'failure delayed');
      }
      assert.equal(authFailures(srcSub) - before, 2, 'the source checked both');
      // over the per-account limit: refused at once, even with the right password, and closed
      assert.match(await d.cmd(`AUTH PLAIN ${token(dan.password)}`), /^421 4\.7\.0 /);
      assert.equal(await d.reply(), '', 'connection closed');
    } finally {
      d.close();
    }
    assert.equal(authFailures(srcSub) - before, 2, 'braked attempts never reach the source');
    assert.equal(gw.store.get(dan.user)?.credentials, undefined);
  });

  it('offers AUTH only inside TLS and answers AUTH before it 530 5.7.0 (RFC 3207 4, RFC 4954)', async () => {
    const attempts = (): number =>
      (readFileSync(srcSub.logFile, 'utf8').match(/sasl_method=|SASL \w+ authentication/g) ?? [])
        .length;
    const before = attempts();
    const d = await SmtpDialog.open(gw.port('submission'));
    try {
      await d.reply();
      const ehlo = await d.cmd('EHLO x.test');
      assert.match(ehlo, /STARTTLS/);
      assert.doesNotMatch(ehlo, /AUTH/, 'no mechanism on offer before TLS (RFC 4954 4)');
      const token = Buffer.from(`\0${bob.user}\0${bob.password}`).toString('base64');
      assert.equal(
        await d.cmd(`AUTH PLAIN ${token}`),
        '530 5.7.0 Must issue a STARTTLS command first',
      );
      assert.equal(await d.cmd('AUTH LOGIN'), '530 5.7.0 Must issue a STARTTLS command first');
      assert.equal(await d.cmd('MAIL FROM:<bob@example.org>'), '530 5.7.0 Authentication required');
      assert.match(await d.cmd('RCPT TO:<victim@foreign.test>'), /^530 5\.7\.0 /);
      assert.match(await d.cmd('STARTTLS'), /^220 2\.0\.0 /);
      await d.startTls();
      assert.match(await d.cmd('EHLO x.test'), /^250-AUTH PLAIN LOGIN$/m);
      assert.equal(await d.cmd('MAIL FROM:<bob@example.org>'), '530 5.7.0 Authentication required');
    } finally {
      d.close();
    }
    // A real client that was told to authenticate without TLS finds nothing to use.
    const r = await run('swaks', [
      '--server',
      '127.0.0.1',
      '--port',
      String(gw.port('submission')),
      '--auth',
      'PLAIN',
      '--auth-user',
      bob.user,
      '--auth-password',
      bob.password,
      '--from',
      bob.user,
      '--to',
      dan.user,
      '--quit-after',
      'AUTH',
    ]).catch((e: { stdout: string; stderr: string; code: number }) => e);
    assert.notEqual('code' in r ? r.code : 0, 0, 'swaks failed');
    assert.match(r.stderr, /did not advertise authentication/);
    assert.doesNotMatch(r.stdout, /AUTH PLAIN/, 'no credentials were sent');
    assert.equal(attempts(), before, 'the source saw no login');
  });

  it('answers 454 4.7.0 for an account being transferred', async () => {
    const r = await run(
      'swaks',
      [
        '--server',
        `127.0.0.1:${gw.port('submissions')}`,
        '--tls-on-connect',
        '--auth',
        'PLAIN',
        '--auth-user',
        carol.user,
        '--auth-password',
        carol.password,
        '--from',
        carol.user,
        '--to',
        dan.user,
        '--quit-after',
        'AUTH',
      ],
      { encoding: 'utf8' },
    ).catch((e: { stdout: string }) => ({ stdout: e.stdout }));
    assert.match(r.stdout, /<~\* +454 4\.7\.0 .*try again/);
  });

  it('verifies the backend certificate: an untrusted one means 454 4.7.0, never a plaintext fallback', async () => {
    const g = await gatewayWith({ deps: { ca: undefined } });
    try {
      const before = authFailures(srcSub);
      const r = await run(
        'swaks',
        [
          '--server',
          `127.0.0.1:${g.port('submissions')}`,
          '--tls-on-connect',
          '--auth',
          'PLAIN',
          '--auth-user',
          bob.user,
          '--auth-password',
          bob.password,
          '--from',
          bob.user,
          '--to',
          dan.user,
          '--quit-after',
          'AUTH',
        ],
        { encoding: 'utf8' },
      ).catch((e: { stdout: string }) => ({ stdout: e.stdout }));
      assert.match(r.stdout, /<~\* +454 4\.7\.0 /);
      assert.match(g.logText(), /TLS with 127\.0\.0\.1:\d+ failed/);
      assert.equal(authFailures(srcSub), before);
      assert.doesNotMatch(
        readFileSync(srcSub.logFile, 'utf8').split('\n').slice(-5).join('\n'),
        /sasl_username=bob/,
      );
    } finally {
      await g.stop();
    }
  });
});
