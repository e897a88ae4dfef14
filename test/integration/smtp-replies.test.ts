/**
 * Enhanced status codes (RFC 2034, RFC 3463) on port 25: advertised in EHLO, and every
 * reply but the greeting, the EHLO reply and 3xx carries exactly one code of its reply's
 * class: ours from the reply table, smtp-server's where it answers alone, the backend's
 * own where its reply is passed through (X.0.0 when it had none). A real Postfix and
 * Dovecot LMTP behind the gateway; stand-ins for backends without codes; raw sockets and
 * nodemailer as clients.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import nodemailer from 'nodemailer';
import type { Credentials } from '../support/index.js';
import {
  mail,
  SmtpDialog,
  smtpTranscript,
  startGatewaySmtp,
  startSmtpLab,
  startStandIn,
  type GatewayLab,
  type SmtpLab,
  type TestGateway,
} from './smtp-support.js';

const D = 'example.org';
const alice: Credentials = { user: `alice@${D}`, password: 'alice-secret' }; // migrated
const bob: Credentials = { user: `bob@${D}`, password: 'bob-secret' }; // captured
const carol: Credentials = { user: `carol@${D}`, password: 'carol-secret' }; // transferring

/** Every line of a reply carries one code of the reply's class, and not a second one after it. */
function assertOneCode(reply: string): void {
  for (const line of reply.split(/\r?\n/)) {
    const m = /^(\d)\d\d[ -]([245])\.\d{1,3}\.\d{1,3} (.*)$/.exec(line);
    assert.ok(m, `no enhanced code in ${JSON.stringify(line)}`);
    assert.equal(m[2], m[1], `code of another class in ${JSON.stringify(line)}`);
    assert.doesNotMatch(
      m[3]!,
      /^[245]\.\d{1,3}\.\d{1,3}\b/,
      `two codes in ${JSON.stringify(line)}`,
    );
  }
}

function labWith(sourceUrl: string): GatewayLab {
  return {
    domains: [D],
    source: { urls: { imap: 'imap://127.0.0.1:1?tls=none' } },
    destination: { urls: { imap: 'imap://127.0.0.1:1?tls=none', lmtp: sourceUrl } },
    mta: { url: sourceUrl },
  };
}

describe('SMTP gateway, enhanced status codes', { timeout: 120_000 }, () => {
  let env: SmtpLab;
  let gw: TestGateway;
  before(async () => {
    env = await startSmtpLab({ users: [alice, bob, carol], destinationUsers: [alice] });
    gw = await startGatewaySmtp(env.lab, { tls: true });
    await gw.store.upsert(alice.user, { state: 'migrated' });
    await gw.store.upsert(bob.user, { state: 'captured' });
    await gw.store.upsert(carol.user, { state: 'transferring' });
  });
  after(async () => {
    await gw?.stop();
    await env?.stop();
  });

  it('advertises ENHANCEDSTATUSCODES and puts one code of the right class on every reply', async () => {
    const d = await SmtpDialog.open(gw.port());
    const replies: string[] = [];
    const cmd = async (line: string): Promise<string> => {
      const r = await d.cmd(line);
      replies.push(r);
      return r;
    };
    try {
      assert.equal(await d.reply(), '220 gateway.test ESMTP', 'the greeting carries no code');
      assert.match(await d.cmd('EHLO x.test'), /^250-ENHANCEDSTATUSCODES$/m);
      assert.equal(await cmd('NOOP'), '250 2.0.0 OK');
      assert.match(await cmd(`VRFY ${bob.user}`), /^252 2\.0\.0 /);
      assert.match(await cmd(`RCPT TO:<${bob.user}>`), /^503 5\.5\.1 /);
      assert.equal(await cmd('MAIL FROM:<a@remote.test>'), '250 2.1.0 Accepted');
      assert.match(await cmd('MAIL FROM:<a@remote.test>'), /^503 5\.5\.1 /);
      assert.equal(await cmd('RCPT TO:<x@foreign.test>'), '554 5.7.1 Relay access denied');
      assert.equal(
        await cmd(`RCPT TO:<${carol.user}>`),
        '450 4.2.1 Mailbox is being moved, try again later',
      );
      // The destination's LMTP is asked first for a migrated account; Postfix for the rest.
      assert.equal(await cmd(`RCPT TO:<${alice.user}>`), '250 2.1.5 Accepted');
      assert.match(await cmd(`RCPT TO:<${bob.user}>`), /^452 4\.5\.3 /);
      assert.match(await d.cmd('DATA'), /^354 /);
      d.write(`${mail('a@remote.test', alice.user, 'codes-1')}.\r\n`);
      const end = await d.reply();
      replies.push(end);
      assert.match(end, /^250 2\.0\.0 <alice@example\.org> .*Saved/, "Dovecot's own reply");
      assert.equal(await cmd('MAIL FROM:<a@remote.test>'), '250 2.1.0 Accepted');
      assert.match(
        await cmd(`RCPT TO:<nobody@${D}>`),
        /^550 5\.1\.1 <nobody@example\.org>: Recipient address rejected/,
        "Postfix's own code, once",
      );
      assert.equal(await cmd('RSET'), '250 2.0.0 Flushed');
      assert.equal(await cmd('BOGUS'), '500 5.5.2 Error: command not recognized');
      assert.equal(await cmd('KILL'), '500 5.5.2 Error: command not recognized');
      assert.match(await cmd('MAIL FROM:<a@remote.test> SIZE=999999999999'), /^552 5\.3\.4 /);
      assert.equal(await cmd('QUIT'), '221 2.0.0 Bye');
    } finally {
      d.close();
    }
    for (const r of replies) assertOneCode(r);
  });

  it("keeps a backend's enhanced code and adds X.0.0 where it gave none", async () => {
    const cases: Array<{ rcpt: string; want: string }> = [
      { rcpt: '550 no such user here', want: '550 5.0.0 no such user here' },
      { rcpt: '451 try later', want: '451 4.0.0 try later' },
      {
        rcpt: '550-5.1.1 first line\r\n550 5.1.1 second line',
        want: '550 5.1.1 first line second line',
      },
      { rcpt: '550 4.1.1 wrong class', want: '550 5.0.0 4.1.1 wrong class' },
    ];
    for (const c of cases) {
      const standIn = await startStandIn({ afterData: 'accept', rcpt: c.rcpt });
      const g = await startGatewaySmtp(labWith(standIn.url));
      try {
        const t = await smtpTranscript(g.port(), [
          'EHLO x.test',
          'MAIL FROM:<a@remote.test>',
          `RCPT TO:<${bob.user}>`,
          'QUIT',
        ]);
        assert.equal(t[3], c.want);
      } finally {
        await g.stop();
        await standIn.stop();
      }
    }
  });

  it('answers the end of DATA with the backend code, or 2.0.0 (nodemailer)', async () => {
    for (const [dataReply, want] of [
      ['250 queued as 12345', '250 2.0.0 queued as 12345'],
      ['250 2.6.0 <id@x> Queued mail for delivery', '250 2.6.0 <id@x> Queued mail for delivery'],
    ] as const) {
      const standIn = await startStandIn({ afterData: 'accept', dataReply });
      const g = await startGatewaySmtp(labWith(standIn.url));
      try {
        const t = nodemailer.createTransport({
          host: '127.0.0.1',
          port: g.port(),
          ignoreTLS: true,
        });
        const info = await t.sendMail({
          envelope: { from: 'a@remote.test', to: [bob.user] },
          raw: mail('a@remote.test', bob.user, 'codes-2'),
        });
        t.close();
        assert.equal(info.response, want);
        assert.equal(standIn.messages.length, 1);
      } finally {
        await g.stop();
        await standIn.stop();
      }
    }
  });
});
