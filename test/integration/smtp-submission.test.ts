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
  inbox,
  mail,
  reconfigurePostfix,
  SmtpDialog,
  startGatewaySmtp,
  startSmtpLab,
  startStandIn,
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
const erin: Credentials = { user: `erin@${D}`, password: 'erin-secret' }; // migrated

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
  await g.store.upsert(alice.user, { state: 'migrated' });
  await g.store.upsert(erin.user, { state: 'migrated' });
  await g.store.upsert(carol.user, { state: 'transferring' });
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
    const rec = (await gw.store.get(bob.user))!;
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
      (await gw.store.get(alice.user))!.credentials,
      undefined,
      'nothing captured for a migrated account',
    );
  });

  it("delivers a submission to a moved colleague's new mailbox, the rest through the home (nodemailer)", async () => {
    const ca = (await testTls()).ca;
    const send = async (user: Credentials, to: string[], marker: string) => {
      const t = nodemailer.createTransport({
        host: '127.0.0.1',
        port: gw.port('submission'),
        requireTLS: true,
        tls: { ca, servername: 'localhost' },
        auth: { user: user.user, pass: user.password },
      });
      try {
        return await t.sendMail({
          envelope: { from: user.user, to },
          raw: mail(user.user, to.join(', '), marker),
        });
      } finally {
        t.close();
      }
    };
    // bob has not moved: dan (at the source) goes through the source's submission service,
    // alice (moved) straight to the destination, not into her old mailbox at the source.
    const info = await send(bob, [dan.user, alice.user], 'two-legs-1');
    assert.deepEqual(info.accepted.sort(), [alice.user, dan.user].sort());
    assert.match(info.response, /^250 2\.0\.0 .*queued/, "the home's reply");
    const dans = await waitForInbox(env.lab.source, dan, (m) => count(m, 'two-legs-1') > 0);
    assert.equal(count(dans, 'two-legs-1'), 1);
    assert.equal(count(await inbox(env.lab.destination, alice), 'two-legs-1'), 1);
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(
      count(await inbox(env.lab.source, alice), 'two-legs-1'),
      0,
      'not in the old mailbox',
    );
    const log = (await gw.relayLog()).filter((e) => e.messageId === '<two-legs-1@test>');
    assert.deepEqual(
      log.map((e) => [e.route, (e.recipients as Array<{ address: string }>).map((r) => r.address)]),
      [
        ['source', [dan.user]],
        ['destination', [alice.user]],
      ],
    );
    assert.ok(log.every((e) => e.accepted === true && e.user === bob.user));
    // alice has moved: bob (still at the source, no mailbox at the destination) gets his copy
    // at the source, straight from the gateway; erin through the destination's submission.
    await send(alice, [bob.user, erin.user], 'two-legs-2');
    const bobs = await waitForInbox(env.lab.source, bob, (m) => count(m, 'two-legs-2') > 0);
    assert.equal(count(bobs, 'two-legs-2'), 1);
    const erins = await waitForInbox(env.lab.destination, erin, (m) => count(m, 'two-legs-2') > 0);
    assert.equal(count(erins, 'two-legs-2'), 1);
  });

  it('refuses a recipient being moved (450 4.2.1) and lets the home refuse for both legs', async () => {
    const d = await SmtpDialog.open(gw.port('submissions'), { tls: true });
    const token = Buffer.from(`\0${bob.user}\0${bob.password}`).toString('base64');
    try {
      await d.reply();
      await d.cmd('EHLO x.test');
      assert.match(await d.cmd(`AUTH PLAIN ${token}`), /^235 /);
      assert.match(await d.cmd(`MAIL FROM:<${bob.user}>`), /^250 /);
      assert.equal(
        await d.cmd(`RCPT TO:<${carol.user}>`),
        '450 4.2.1 Mailbox is being moved, try again later',
      );
      assert.equal(await d.cmd('RSET'), '250 2.0.0 Flushed');
    } finally {
      d.close();
    }
    // The source's submission service refuses the message at its end of data (size): the
    // straight leg to alice is never ended, so nobody gets it.
    await reconfigurePostfix(srcSub, ['message_size_limit=3000']);
    try {
      const d2 = await SmtpDialog.open(gw.port('submissions'), { tls: true });
      try {
        await d2.reply();
        await d2.cmd('EHLO x.test');
        assert.match(await d2.cmd(`AUTH PLAIN ${token}`), /^235 /);
        assert.match(await d2.cmd(`MAIL FROM:<${bob.user}>`), /^250 /);
        assert.match(await d2.cmd(`RCPT TO:<${dan.user}>`), /^250 /);
        assert.match(await d2.cmd(`RCPT TO:<${alice.user}>`), /^250 /);
        assert.match(await d2.cmd('DATA'), /^354 /);
        d2.write(
          `${mail(bob.user, alice.user, 'home-refuses', `X-Pad: ${'x'.repeat(5000)}\r\n`)}.\r\n`,
        );
        assert.match(await d2.reply(), /^552 5\.3\.4 /);
      } finally {
        d2.close();
      }
    } finally {
      await reconfigurePostfix(srcSub, ['message_size_limit=0']);
    }
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(count(await inbox(env.lab.destination, alice), 'home-refuses'), 0);
    assert.equal(count(await inbox(env.lab.source, dan), 'home-refuses'), 0);
  });

  it('answers the refusal of the straight leg although the home delivered (logged)', async () => {
    const standIn = await startStandIn({
      afterData: 'accept',
      dataReply: '452 4.2.2 Mailbox full',
    });
    const g = await gatewayWith({ destinationSmtp: standIn.url });
    try {
      const ca = (await testTls()).ca;
      const t = nodemailer.createTransport({
        host: '127.0.0.1',
        port: g.port('submission'),
        requireTLS: true,
        tls: { ca, servername: 'localhost' },
        auth: { user: bob.user, pass: bob.password },
      });
      await assert.rejects(
        t.sendMail({
          envelope: { from: bob.user, to: [dan.user, alice.user] },
          raw: mail(bob.user, alice.user, 'direct-fails'),
        }),
        (err: { responseCode?: number; response?: string }) =>
          err.responseCode === 452 && /4\.2\.2 Mailbox full/.test(err.response ?? ''),
      );
      t.close();
      assert.equal(standIn.messages.length, 1, 'the straight leg got the whole message');
      const dans = await waitForInbox(env.lab.source, dan, (m) => count(m, 'direct-fails') > 0);
      assert.equal(count(dans, 'direct-fails'), 1, 'the home leg was ended first');
      const log = (await g.relayLog()).filter((e) => e.messageId === '<direct-fails@test>');
      assert.deepEqual(
        log.map((e) => [e.route, e.accepted]),
        [
          ['source', true],
          ['destination', false],
        ],
      );
      assert.match(g.logText(), /delivered on one leg and refused on the other/);
    } finally {
      await g.stop();
      await standIn.stop();
    }
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
    assert.equal((await gw.store.get(dan.user))?.credentials, undefined);
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
