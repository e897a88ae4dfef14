/**
 * Port 25 end to end: real clients (nodemailer, swaks, curl, raw sockets) -> the gateway
 * -> the source's real Postfix (delivering to the source Dovecot over LMTP) or the
 * destination Dovecot's LMTP, mail read back over IMAP.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import nodemailer from 'nodemailer';
import type { AccountState } from '../../src/core/state/types.js';
import { testTls, type Credentials } from '../support/index.js';
import {
  count,
  inbox,
  mail,
  makeTempDir,
  reconfigurePostfix,
  removeDir,
  SmtpDialog,
  smtpTranscript,
  startGatewaySmtp,
  startSmtpLab,
  waitForInbox,
  type SmtpLab,
  type TestGateway,
} from './smtp-support.js';

const run = promisify(execFile);
const D = 'example.org';
const alice: Credentials = { user: `alice@${D}`, password: 'alice-secret' }; // migrated
const bob: Credentials = { user: `bob@${D}`, password: 'bob-secret' }; // captured
const carol: Credentials = { user: `carol@${D}`, password: 'carol-secret' }; // transferring
const dan: Credentials = { user: `dan@${D}`, password: 'dan-secret' }; // never seen
const erin: Credentials = { user: `erin@${D}`, password: 'erin-secret' }; // migrated

const STATES: Record<string, AccountState> = {
  [alice.user]: 'migrated',
  [bob.user]: 'captured',
  [carol.user]: 'transferring',
  [erin.user]: 'migrated',
};

let env: SmtpLab;
let gw: TestGateway;
let tmp: string;

async function setStates(g: TestGateway): Promise<void> {
  for (const [a, s] of Object.entries(STATES)) await g.store.upsert(a, { state: s });
}

function transport(port: number) {
  return nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    secure: false,
    tls: { ca: undefined, rejectUnauthorized: false },
    ignoreTLS: true,
  });
}

describe('SMTP gateway, port 25', { timeout: 120_000 }, () => {
  before(async () => {
    tmp = makeTempDir('smtp-route');
    env = await startSmtpLab({
      users: [alice, bob, carol, dan, erin],
      destinationUsers: [alice, erin],
    });
    // The source's MTA trusts the gateway to tell it who the client is.
    await reconfigurePostfix(env.lab.mta, ['smtpd_authorized_xclient_hosts=127.0.0.1']);
    gw = await startGatewaySmtp(env.lab, { tls: true });
    await setStates(gw);
  });
  after(async () => {
    await gw?.stop();
    await env?.stop();
    if (tmp) removeDir(tmp);
  });

  it('routes each state to the right mailbox (nodemailer)', async () => {
    const t = transport(gw.port());
    for (const [who, marker] of [
      [alice, 'route-migrated'],
      [bob, 'route-captured'],
      [dan, 'route-never-seen'],
    ] as const) {
      const info = await t.sendMail({
        envelope: { from: 'sender@remote.test', to: [who.user] },
        raw: mail('sender@remote.test', who.user, marker),
      });
      assert.deepEqual(info.accepted, [who.user], marker);
    }
    await assert.rejects(
      t.sendMail({
        envelope: { from: 'sender@remote.test', to: [carol.user] },
        raw: mail('sender@remote.test', carol.user, 'route-busy'),
      }),
      (err: { responseCode?: number; response?: string }) =>
        err.responseCode === 450 && /4\.2\.1 Mailbox is being moved/.test(err.response ?? ''),
    );
    t.close();
    assert.equal(
      count(await inbox(env.lab.destination, alice), 'route-migrated'),
      1,
      'migrated: destination',
    );
    assert.equal(
      count(await inbox(env.lab.source, alice), 'route-migrated'),
      0,
      'migrated: not the source',
    );
    assert.equal(
      count(
        await waitForInbox(env.lab.source, bob, (m) => count(m, 'route-captured') > 0),
        'route-captured',
      ),
      1,
    );
    assert.equal(
      count(
        await waitForInbox(env.lab.source, dan, (m) => count(m, 'route-never-seen') > 0),
        'route-never-seen',
      ),
      1,
    );
    assert.equal(count(await inbox(env.lab.source, carol), 'route-busy'), 0);
  });

  it('refuses a foreign domain and relaying for anyone (swaks, raw)', async () => {
    const r = await run(
      'swaks',
      [
        '--server',
        `127.0.0.1:${gw.port()}`,
        '--from',
        'spammer@remote.test',
        '--to',
        'victim@foreign.test',
        '--quit-after',
        'RCPT',
      ],
      { encoding: 'utf8' },
    ).catch((e: { stdout: string }) => ({ stdout: e.stdout }));
    assert.match(r.stdout, /<\*\* +554 5\.7\.1 Relay access denied/);
    const t = await smtpTranscript(gw.port(), [
      'EHLO x.test',
      'MAIL FROM:<a@remote.test>',
      'RCPT TO:<victim%foreign.test@example.org>',
      'RCPT TO:<x@[127.0.0.1]>',
      'QUIT',
    ]);
    assert.match(t[3]!, /^554 5\.7\.1 /);
    assert.match(t[4]!, /^554 5\.7\.1 /);
    assert.doesNotMatch(t[1]!, /AUTH/, 'port 25 offers no AUTH');
  });

  it("gives the source's own 550 for an unknown user at RCPT", async () => {
    const t = await smtpTranscript(gw.port(), [
      'EHLO x.test',
      'MAIL FROM:<a@remote.test>',
      `RCPT TO:<nobody@${D}>`,
      `RCPT TO:<${bob.user}>`,
      'QUIT',
    ]);
    assert.match(t[3]!, /^550 5\.1\.1 <nobody@example\.org>: Recipient address rejected/);
    assert.match(t[4]!, /^250 /);
  });

  it('delivers a mixed-recipient transaction exactly once per recipient (452 4.5.3 for the minority)', async () => {
    const t = transport(gw.port());
    const marker = 'mixed-once';
    const to = [alice.user, bob.user, erin.user, dan.user];
    const first = await t.sendMail({
      envelope: { from: 'list@remote.test', to },
      raw: mail('list@remote.test', 'team@example.org', marker),
    });
    // alice (destination, LMTP) fixes the route; LMTP takes one recipient per transaction.
    assert.deepEqual(first.accepted, [alice.user]);
    assert.deepEqual([...first.rejected].sort(), [bob.user, dan.user, erin.user]);
    for (const e of first.rejectedErrors ?? [])
      assert.match(String((e as { response?: string }).response), /^452 4\.5\.3 /);
    // What a real MTA does with 452: the rest again, in new transactions, until none is left.
    let pending = [...first.rejected] as string[];
    for (let round = 0; pending.length > 0 && round < 5; round++) {
      const info = await t.sendMail({
        envelope: { from: 'list@remote.test', to: pending },
        raw: mail('list@remote.test', 'team@example.org', marker),
      });
      pending = info.rejected as string[];
    }
    t.close();
    assert.deepEqual(pending, []);
    assert.equal(count(await inbox(env.lab.destination, alice), marker), 1);
    assert.equal(count(await inbox(env.lab.destination, erin), marker), 1);
    assert.equal(
      count(await waitForInbox(env.lab.source, bob, (m) => count(m, marker) > 0), marker),
      1,
    );
    assert.equal(
      count(await waitForInbox(env.lab.source, dan, (m) => count(m, marker) > 0), marker),
      1,
    );
    // nothing went to the wrong side
    assert.equal(count(await inbox(env.lab.source, alice), marker), 0);
  });

  it('runs several transactions for different backends in one session, RSET included', async () => {
    const d = await SmtpDialog.open(gw.port());
    const send = async (to: string, marker: string): Promise<string> => {
      assert.match(await d.cmd('MAIL FROM:<multi@remote.test>'), /^250 /);
      assert.match(await d.cmd(`RCPT TO:<${to}>`), /^250 /);
      assert.match(await d.cmd('DATA'), /^354 /);
      d.write(`${mail('multi@remote.test', to, marker)}.\r\n`);
      return d.reply();
    };
    try {
      await d.reply();
      await d.cmd('EHLO x.test');
      assert.match(await send(bob.user, 'multi-1'), /^250 /);
      assert.match(await send(alice.user, 'multi-2'), /^250 /);
      assert.match(await d.cmd('MAIL FROM:<multi@remote.test>'), /^250 /);
      assert.match(await d.cmd(`RCPT TO:<${erin.user}>`), /^250 /);
      assert.match(await d.cmd('RSET'), /^250 /);
      assert.match(await send(bob.user, 'multi-3'), /^250 /);
      assert.match(await d.cmd('QUIT'), /^221 /);
    } finally {
      d.close();
    }
    const bobs = await waitForInbox(env.lab.source, bob, (m) => count(m, 'multi-3') > 0);
    assert.equal(count(bobs, 'multi-1'), 1);
    assert.equal(count(bobs, 'multi-3'), 1);
    assert.equal(count(await inbox(env.lab.destination, alice), 'multi-2'), 1);
    assert.equal(
      (await inbox(env.lab.destination, erin)).length,
      count(await inbox(env.lab.destination, erin), 'mixed-once'),
      'the reset transaction left nothing',
    );
  });

  it('does not let "\\n.\\n" or "\\r.\\r" smuggle a second message', async () => {
    const d = await SmtpDialog.open(gw.port());
    try {
      await d.reply();
      await d.cmd('EHLO x.test');
      assert.match(await d.cmd('MAIL FROM:<a@remote.test>'), /^250 /);
      assert.match(await d.cmd(`RCPT TO:<${bob.user}>`), /^250 /);
      assert.match(await d.cmd('DATA'), /^354 /);
      const smuggled = (sep: string, tag: string) =>
        `${sep}.${sep}MAIL FROM:<evil@remote.test>${sep}RCPT TO:<${dan.user}>${sep}DATA${sep}Subject: smuggled-${tag}${sep}${sep}x${sep}.${sep}`;
      d.write(
        `Subject: smuggle-carrier\r\nMessage-ID: <carrier@test>\r\n\r\nline${smuggled('\n', 'lf')}${smuggled('\r', 'cr')}end\r\n.\r\n`,
      );
      assert.match(await d.reply(), /^250 /);
      await d.cmd('QUIT');
    } finally {
      d.close();
    }
    const bobs = await waitForInbox(env.lab.source, bob, (m) => count(m, 'smuggle-carrier') > 0);
    assert.equal(count(bobs, 'smuggle-carrier'), 1);
    const carrier = bobs.find((m) => m.includes('smuggle-carrier'))!;
    assert.match(
      carrier,
      /\r\nRCPT TO:<dan@example\.org>\r\n/,
      'the payload stayed inside the one message',
    );
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(
      (await inbox(env.lab.source, dan)).filter((m) => /Subject: smuggled-/.test(m)).length,
      0,
      'no second message',
    );
  });

  it('refuses pipelined commands after STARTTLS (no injection)', async () => {
    const d = await SmtpDialog.open(gw.port());
    try {
      await d.reply();
      assert.match(await d.cmd('EHLO x.test'), /STARTTLS/);
      d.write('STARTTLS\r\nRSET\r\nMAIL FROM:<injected@remote.test>\r\n');
      assert.match(await d.reply(), /^220 /);
      await d.startTls();
      const ehlo = await d.cmd('EHLO x.test');
      assert.match(
        ehlo,
        /^250-/,
        'the first reply inside TLS answers our EHLO, not an injected command',
      );
      assert.doesNotMatch(ehlo, /STARTTLS/);
      // an injected MAIL would make this a nested MAIL (503)
      assert.match(await d.cmd('MAIL FROM:<real@remote.test>'), /^250 /);
      assert.match(await d.cmd('QUIT'), /^221 /);
    } finally {
      d.close();
    }
  });

  it('refuses too big a message at MAIL (SIZE=) and at DATA, and nothing arrives', async () => {
    const small = await startGatewaySmtp(env.lab, { deps: { limits: { maxMessageBytes: 4000 } } });
    try {
      await setStates(small);
      const t1 = await smtpTranscript(small.port(), [
        'EHLO x.test',
        'MAIL FROM:<a@remote.test> SIZE=5000',
        'QUIT',
      ]);
      assert.match(t1[1]!, /SIZE 4000/);
      assert.match(t1[2]!, /^552 /);
      const body = `Subject: too-big-data\r\n\r\n${'x'.repeat(70)}\r\n`.repeat(80);
      const t2 = await smtpTranscript(small.port(), [
        'EHLO x.test',
        'MAIL FROM:<a@remote.test>',
        `RCPT TO:<${bob.user}>`,
        'DATA',
        Buffer.from(`${body}.\r\n`),
        'QUIT',
      ]);
      assert.match(t2[5]!, /^552 5\.3\.4 /);
      assert.match(t2[6]!, /^221 /, 'the session goes on');
      const lmtp = await smtpTranscript(small.port(), [
        'EHLO x.test',
        'MAIL FROM:<a@remote.test>',
        `RCPT TO:<${alice.user}>`,
        'DATA',
        Buffer.from(`${body}.\r\n`),
        'QUIT',
      ]);
      assert.match(lmtp[5]!, /^552 5\.3\.4 /);
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(count(await inbox(env.lab.source, bob), 'too-big-data'), 0);
      assert.equal(count(await inbox(env.lab.destination, alice), 'too-big-data'), 0);
      assert.equal((await small.relayLog()).length, 0);
    } finally {
      await small.stop();
    }
  });

  it('passes the client address with XCLIENT and takes mail from curl', async () => {
    const file = join(tmp, 'curl.eml');
    writeFileSync(file, mail('curl@remote.test', dan.user, 'via-curl'));
    await run('curl', [
      '-sS',
      '--url',
      `smtp://127.0.0.1:${gw.port()}`,
      '--interface',
      '127.0.0.2',
      '--mail-from',
      'curl@remote.test',
      '--mail-rcpt',
      dan.user,
      '--upload-file',
      file,
    ]);
    const msgs = await waitForInbox(env.lab.source, dan, (m) => count(m, 'via-curl') > 0);
    const m = msgs.find((x) => x.includes('via-curl'))!;
    assert.ok(m, 'delivered');
    // Postfix's Received: line names the client XCLIENT gave it, not the gateway.
    assert.match(m, /Received: from [^\r\n]*\r?\n?[^\r\n]*\[127\.0\.0\.2\]/);
  });

  it('writes one relay log line per relayed message, with the fields', async () => {
    const g = await startGatewaySmtp(env.lab);
    try {
      await setStates(g);
      const t = transport(g.port());
      await t.sendMail({
        envelope: { from: 'news@lists.test', to: [bob.user] },
        raw: mail(
          'news@lists.test',
          bob.user,
          'log-list',
          'List-Id: News <news.lists.test>\r\nPrecedence: list\r\n',
        ),
      });
      await t.sendMail({
        envelope: { from: '', to: [dan.user] },
        raw: mail('', dan.user, 'Out of office', 'Auto-Submitted: auto-replied\r\n'),
      });
      await t.sendMail({
        envelope: { from: 'x@remote.test', to: [alice.user] },
        raw: mail('x@remote.test', alice.user, 'log-dest'),
      });
      await assert.rejects(
        t.sendMail({
          envelope: { from: 'x@remote.test', to: ['nobody@example.org'] },
          raw: mail('x@remote.test', 'n@x', 'log-none'),
        }),
      );
      t.close();
      const log = await g.relayLog();
      assert.equal(log.length, 3, JSON.stringify(log));
      const [list, vacation, dest] = log as Array<Record<string, unknown>>;
      assert.equal(list!.route, 'source');
      assert.equal(list!.from, 'news@lists.test');
      assert.deepEqual(list!.recipients, [{ address: bob.user, reason: 'captured' }]);
      assert.equal(list!.client, '127.0.0.1');
      assert.equal(list!.messageId, '<log-list@test>');
      assert.match(String(list!.subjectHash), /^[0-9a-f]{16}$/);
      assert.deepEqual(list!.auto, ['precedence', 'list']);
      assert.match(String(list!.reply), /^250 /);
      assert.equal(list!.accepted, true);
      assert.ok(Number(list!.size) > 100);
      assert.ok(typeof list!.time === 'string' && typeof list!.backend === 'string');
      assert.deepEqual(vacation!.auto, ['auto-submitted', 'vacation', 'null-sender']);
      assert.equal(vacation!.from, '');
      assert.equal(dest!.route, 'destination');
      assert.deepEqual(dest!.recipients, [{ address: alice.user, reason: 'migrated' }]);
    } finally {
      await g.stop();
    }
  });

  it('answers 451 4.3.0 when the account store cannot be read', async () => {
    const g = await startGatewaySmtp(env.lab, {
      deps: {
        store: {
          get: () => {
            throw new Error('store unavailable');
          },
          update: () => {
            throw new Error('store unavailable');
          },
          flush: async () => undefined,
        },
      },
    });
    try {
      const t = await smtpTranscript(g.port(), [
        'EHLO x.test',
        'MAIL FROM:<a@remote.test>',
        `RCPT TO:<${bob.user}>`,
        'QUIT',
      ]);
      assert.match(t[3]!, /^451 4\.3\.0 /);
    } finally {
      await g.stop();
    }
  });

  it('refuses bare line endings with 554 5.6.0 when told to', async () => {
    const g = await startGatewaySmtp(env.lab, { deps: { limits: { bareLineEndings: 'reject' } } });
    try {
      await setStates(g);
      const t = await smtpTranscript(g.port(), [
        'EHLO x.test',
        'MAIL FROM:<a@remote.test>',
        `RCPT TO:<${alice.user}>`,
        'DATA',
        Buffer.from('Subject: bare-lf-refused\r\n\r\nline\nline\r\n.\r\n'),
        'QUIT',
      ]);
      assert.match(t[5]!, /^554 5\.6\.0 /);
      assert.equal(count(await inbox(env.lab.destination, alice), 'bare-lf-refused'), 0);
    } finally {
      await g.stop();
    }
  });

  it('offers STARTTLS with the configured certificate (nodemailer, verified)', async () => {
    const t = nodemailer.createTransport({
      host: '127.0.0.1',
      port: gw.port(),
      secure: false,
      requireTLS: true,
      tls: { ca: (await testTls()).ca, servername: 'localhost' },
    });
    const info = await t.sendMail({
      envelope: { from: 'tls@remote.test', to: [alice.user] },
      raw: mail('tls@remote.test', alice.user, 'over-starttls'),
    });
    t.close();
    assert.deepEqual(info.accepted, [alice.user]);
    assert.ok(gw.events.some((e) => e.type === 'session.tls'));
  });
});
