/**
 * Backends that are down, slow or die mid-message: the client gets a 4xx (451 4.4.1)
 * and never a 250 for mail no backend accepted; a message the gateway abandons never
 * reaches a backend complete. Stand-in backends (test/integration/smtp-support.ts) play
 * the faults; the clients are nodemailer and raw sockets.
 */
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import nodemailer from 'nodemailer';
import { freePort, startLab, type Lab } from '../support/index.js';
import { startFaultProxy, type FaultScript } from './cut-proxy.js';
import {
  count,
  mail,
  SmtpDialog,
  smtpTranscript,
  startGatewaySmtp,
  startStandIn,
  waitForInbox,
  type GatewayLab,
} from './smtp-support.js';

const D = 'example.org';

function labWith(sourceUrl: string, lmtpUrl: string): GatewayLab {
  return {
    domains: [D],
    source: { urls: { imap: 'imap://127.0.0.1:1?tls=none' } },
    destination: { urls: { imap: 'imap://127.0.0.1:1?tls=none', lmtp: lmtpUrl } },
    mta: { url: sourceUrl },
  };
}

/** A TCP server that accepts and says nothing. */
async function silentServer(): Promise<{ port: number; stop(): Promise<void> }> {
  const socks = new Set<Socket>();
  const srv: Server = createServer((s) => {
    socks.add(s);
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: (srv.address() as { port: number }).port,
    stop: () =>
      new Promise<void>((r) => {
        for (const s of socks) s.destroy();
        srv.close(() => r());
      }),
  };
}

const MSG = Buffer.from('Subject: fault\r\n\r\nhello\r\n.\r\n');

describe('SMTP gateway, backend faults', { timeout: 60_000 }, () => {
  let closedPort: number;
  before(async () => {
    closedPort = await freePort();
  });

  it('answers RCPT with 451 4.4.1 when the source is unreachable, and nodemailer gets no 250', async () => {
    const gw = await startGatewaySmtp(
      labWith(`smtp://127.0.0.1:${closedPort}?tls=none`, `lmtp://127.0.0.1:${closedPort}`),
    );
    try {
      const t = await smtpTranscript(gw.port(), [
        'EHLO x.test',
        'MAIL FROM:<a@remote.test>',
        `RCPT TO:<bob@${D}>`,
        'DATA',
        'QUIT',
      ]);
      assert.match(t[3]!, /^451 4\.4\.1 /);
      assert.match(t[4]!, /^503 /, 'no recipient, no DATA');
      await gw.store.upsert(`alice@${D}`, { state: 'migrated' });
      const t2 = await smtpTranscript(gw.port(), [
        'EHLO x.test',
        'MAIL FROM:<a@remote.test>',
        `RCPT TO:<alice@${D}>`,
        'QUIT',
      ]);
      assert.match(t2[3]!, /^451 4\.4\.1 /, 'destination LMTP down too');
      const nm = nodemailer.createTransport({
        host: '127.0.0.1',
        port: gw.port(),
        secure: false,
        ignoreTLS: true,
      });
      await assert.rejects(
        nm.sendMail({
          envelope: { from: 'a@remote.test', to: [`bob@${D}`] },
          raw: 'Subject: x\r\n\r\ny\r\n',
        }),
        (e: { responseCode?: number }) => e.responseCode === 451,
      );
      nm.close();
      assert.equal((await gw.relayLog()).length, 0);
    } finally {
      await gw.stop();
    }
  });

  it('answers 451 4.4.1 when a backend never greets (greeting timeout)', async () => {
    const silent = await silentServer();
    const gw = await startGatewaySmtp(
      labWith(`smtp://127.0.0.1:${silent.port}?tls=none`, `lmtp://127.0.0.1:${closedPort}`),
      { timeouts: { greetingMs: 300 } },
    );
    try {
      const started = Date.now();
      const t = await smtpTranscript(gw.port(), [
        'EHLO x.test',
        'MAIL FROM:<a@remote.test>',
        `RCPT TO:<bob@${D}>`,
        'QUIT',
      ]);
      assert.match(t[3]!, /^451 4\.4\.1 /);
      assert.ok(Date.now() - started < 5000);
    } finally {
      await gw.stop();
      await silent.stop();
    }
  });

  for (const [afterData, why] of [
    ['close', 'closes the connection'],
    ['hang', 'never answers'],
    ['reply-421', 'answers 421'],
  ] as const) {
    it(`never answers 250 when the backend ${why} after the end of DATA`, async () => {
      const standIn = await startStandIn({ afterData });
      const gw = await startGatewaySmtp(labWith(standIn.url, `lmtp://127.0.0.1:${closedPort}`), {
        deps: { limits: { dataReplyMs: 500 } },
      });
      try {
        const t = await smtpTranscript(gw.port(), [
          'EHLO x.test',
          'MAIL FROM:<a@remote.test>',
          `RCPT TO:<bob@${D}>`,
          'DATA',
          MSG,
          'QUIT',
        ]);
        assert.match(t[4]!, /^354 /);
        assert.match(t[5]!, afterData === 'reply-421' ? /^421 4\.3\.0 / : /^451 4\.4\.1 /);
        assert.equal(standIn.messages.length, 1, 'the backend saw the whole message');
        const log = await gw.relayLog();
        assert.ok(log.every((e) => e.accepted === false));
      } finally {
        await gw.stop();
        await standIn.stop();
      }
    });
  }

  it('never finishes a message whose client went away mid-DATA', async () => {
    const standIn = await startStandIn({ afterData: 'accept' });
    const gw = await startGatewaySmtp(labWith(standIn.url, `lmtp://127.0.0.1:${closedPort}`));
    try {
      const d = await SmtpDialog.open(gw.port());
      await d.reply();
      await d.cmd('EHLO x.test');
      await d.cmd('MAIL FROM:<a@remote.test>');
      assert.match(await d.cmd(`RCPT TO:<bob@${D}>`), /^250 /);
      assert.match(await d.cmd('DATA'), /^354 /);
      d.write(`Subject: cut\r\n\r\n${'line\r\n'.repeat(2000)}`);
      await new Promise((r) => setTimeout(r, 300));
      d.close();
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(standIn.messages.length, 0, 'no end of data reached the backend');
      assert.equal((await gw.relayLog()).length, 0);
    } finally {
      await gw.stop();
      await standIn.stop();
    }
  });

  it('never drops TLS: a tls=starttls backend without STARTTLS gets no mail (451 4.4.1)', async () => {
    const standIn = await startStandIn({ afterData: 'accept' });
    const gw = await startGatewaySmtp(
      labWith(standIn.url.replace('tls=none', 'tls=starttls'), `lmtp://127.0.0.1:${closedPort}`),
    );
    try {
      const t = await smtpTranscript(gw.port(), [
        'EHLO x.test',
        'MAIL FROM:<a@remote.test>',
        `RCPT TO:<bob@${D}>`,
        'QUIT',
      ]);
      assert.match(t[3]!, /^451 4\.4\.1 /);
      assert.match(gw.logText(), /does not offer STARTTLS/);
    } finally {
      await gw.stop();
      await standIn.stop();
    }
  });

  it('reopens a kept backend connection the backend closed while idle (421), without bothering the client', async () => {
    const standIn = await startStandIn({ afterData: 'accept', idleCloseMs: 200 });
    const gw = await startGatewaySmtp(labWith(standIn.url, `lmtp://127.0.0.1:${closedPort}`));
    try {
      const d = await SmtpDialog.open(gw.port());
      try {
        await d.reply();
        await d.cmd('EHLO x.test');
        for (let i = 0; i < 2; i++) {
          assert.match(await d.cmd('MAIL FROM:<a@remote.test>'), /^250 /);
          assert.match(await d.cmd(`RCPT TO:<bob@${D}>`), /^250 /, `transaction ${i}`);
          assert.match(await d.cmd('DATA'), /^354 /);
          d.write(MSG);
          assert.match(await d.reply(), /^250 /);
          await new Promise((r) => setTimeout(r, 400));
        }
      } finally {
        d.close();
      }
      assert.equal(standIn.messages.length, 2);
      assert.equal(standIn.connections(), 2);
    } finally {
      await gw.stop();
      await standIn.stop();
    }
  });

  it('a backend lost at the second RCPT fails the whole transaction with 4xx, never a 5xx at DATA', async () => {
    // RFC 5321 4.2.5: a temporary failure. The first recipient's 250 stands, so the client
    // goes on to DATA; a 503 there would make the sending MTA bounce the message.
    const standIn = await startStandIn({ afterData: 'accept' });
    const cut = await startFaultProxy(
      { host: '127.0.0.1', port: standIn.port },
      { trigger: { dir: 'up', match: /RCPT TO/, nth: 2 }, action: 'close' },
    );
    const gw = await startGatewaySmtp(
      labWith(`smtp://127.0.0.1:${cut.port}?tls=none`, `lmtp://127.0.0.1:${closedPort}`),
    );
    try {
      const d = await SmtpDialog.open(gw.port());
      try {
        await d.reply();
        await d.cmd('EHLO x.test');
        assert.match(await d.cmd('MAIL FROM:<a@remote.test>'), /^250 /);
        assert.match(await d.cmd(`RCPT TO:<bob@${D}>`), /^250 /);
        assert.match(await d.cmd(`RCPT TO:<carol@${D}>`), /^451 4\.4\.1 /);
        assert.match(
          await d.cmd(`RCPT TO:<dave@${D}>`),
          /^451 4\.4\.1 /,
          'the transaction is lost',
        );
        assert.match(await d.cmd('DATA'), /^354 /);
        d.write(MSG);
        assert.match(await d.reply(), /^451 4\.4\.1 /, 'bob is retried later, not bounced');
        // the session goes on: a new transaction on a new backend connection
        assert.match(await d.cmd('RSET'), /^250 /);
        assert.match(await d.cmd('MAIL FROM:<a@remote.test>'), /^250 /);
        assert.match(await d.cmd(`RCPT TO:<bob@${D}>`), /^250 /);
        assert.match(await d.cmd('DATA'), /^354 /);
        d.write(MSG);
        assert.match(await d.reply(), /^250 /);
      } finally {
        d.close();
      }
      assert.equal(cut.struck, 1);
      assert.equal(standIn.messages.length, 1, 'only the second transaction reached the backend');
      const log = await gw.relayLog();
      assert.equal(log.length, 1);
      assert.deepEqual(
        (log[0]!.recipients as Array<{ address: string }>).map((r) => r.address),
        [`bob@${D}`],
      );
    } finally {
      await gw.stop();
      await cut.close();
      await standIn.stop();
    }
  });

  it('passes a backend refusal at RCPT through as it was said', async () => {
    const standIn = await startStandIn({ afterData: 'accept', rcpt: '452 4.2.2 Mailbox full' });
    const gw = await startGatewaySmtp(labWith(standIn.url, `lmtp://127.0.0.1:${closedPort}`));
    try {
      const t = await smtpTranscript(gw.port(), [
        'EHLO x.test',
        'MAIL FROM:<a@remote.test>',
        `RCPT TO:<bob@${D}>`,
        'QUIT',
      ]);
      assert.equal(t[3], '452 4.2.2 Mailbox full');
    } finally {
      await gw.stop();
      await standIn.stop();
    }
  });
});

/**
 * The fault matrix (issue #10, item 6) against the real backends: the source's Postfix
 * and the destination's Dovecot LMTP. A fault proxy in front of one closes or stalls the
 * gateway's first connection to it at one step. The client gets 451 (at RCPT, or after
 * its dot) and never a 250 for a message the backend may not have; a second session
 * through the same gateway, started while a stalled one still waits, delivers. Stalls
 * end by the gateway's own timeouts, set short here.
 */
type Step = 'greeting' | 'EHLO' | 'second RCPT' | 'mid-DATA' | 'final reply';

const STEPS: Record<Step, { trigger: FaultScript['trigger']; failsAt: 'rcpt' | 'dot' }> = {
  greeting: { trigger: { dir: 'accept' }, failsAt: 'rcpt' },
  EHLO: { trigger: { dir: 'up', match: /^[EL]HLO /m }, failsAt: 'rcpt' },
  'second RCPT': { trigger: { dir: 'up', match: /^RCPT TO/m, nth: 2 }, failsAt: 'dot' },
  'mid-DATA': { trigger: { dir: 'up', match: /MIDDLE-OF-DATA/ }, failsAt: 'dot' },
  // the backend has the whole message and may deliver it: the sender's retry may double it
  // (RFC 5321 6.1 prefers that to a loss), the gateway must not say 250 for it
  'final reply': { trigger: { dir: 'up', match: /\r\n\.\r\n/, pass: 'through' }, failsAt: 'dot' },
};

describe('SMTP gateway, fault matrix in front of Postfix and LMTP', { timeout: 240_000 }, () => {
  const alice = { user: `alice@${D}`, password: 'alice-secret' };
  const bob = { user: `bob@${D}`, password: 'bob-secret' };
  const carol = { user: `carol@${D}`, password: 'carol-secret' };
  const dan = { user: `dan@${D}`, password: 'dan-secret' };
  let lab: Lab;
  before(async () => {
    lab = await startLab({ users: [alice, bob], destinationUsers: [carol, dan] });
  });
  after(async () => {
    await lab?.stop();
  });

  /**
   * Per backend: the recipients of the faulted transaction (all routed to it) and the one
   * the healthy session writes to. LMTP takes one recipient per transaction (recipients.ts).
   */
  const BACKENDS = [
    { name: 'Postfix', side: 'source', faulted: () => [alice, bob], healthy: () => bob },
    { name: 'LMTP', side: 'destination', faulted: () => [carol], healthy: () => dan },
  ] as const;

  let n = 0;
  for (const backend of BACKENDS) {
    for (const [step, { trigger, failsAt }] of Object.entries(STEPS) as Array<
      [Step, (typeof STEPS)[Step]]
    >) {
      if (backend.name === 'LMTP' && step === 'second RCPT') continue;
      for (const action of ['close', 'stall'] as const) {
        it(`${backend.name} ${action === 'close' ? 'closes' : 'stalls'} at ${step}: 451, and the next session delivers`, async () => {
          const marker = `fault-${++n}-${action}`;
          const server = backend.side === 'source' ? lab.mta.port : lab.destination.ports.lmtp;
          const proxy = await startFaultProxy(
            { host: '127.0.0.1', port: server },
            { trigger, action },
          );
          const via = `127.0.0.1:${proxy.port}`;
          const gw = await startGatewaySmtp(
            {
              domains: lab.domains,
              source: lab.source,
              destination: {
                urls: {
                  imap: lab.destination.urls.imap,
                  lmtp:
                    backend.side === 'destination' ? `lmtp://${via}` : lab.destination.urls.lmtp,
                },
              },
              mta: { url: backend.side === 'source' ? `smtp://${via}?tls=none` : lab.mta.url },
            },
            {
              timeouts: { greetingMs: 700, commandMs: 1500 },
              deps: { limits: { dataReplyMs: 1500 } },
            },
          );
          for (const u of [carol, dan]) await gw.store.upsert(u.user, { state: 'migrated' });
          const mailbox = backend.side === 'source' ? lab.source : lab.destination;
          const to = backend.healthy();
          try {
            const faulted = faultedTransaction(gw.port(), marker, backend.faulted(), failsAt);
            // the healthy session starts once the fault struck: it is the second connection
            const deadline = Date.now() + 10_000;
            while (proxy.struck === 0 && Date.now() < deadline)
              await new Promise((r) => setTimeout(r, 20));
            assert.equal(proxy.struck, 1, 'the fault struck');
            const ok = await smtpTranscript(gw.port(), [
              'EHLO x.test',
              'MAIL FROM:<a@remote.test>',
              `RCPT TO:<${to.user}>`,
              'DATA',
              Buffer.from(`${mail('a@remote.test', to.user, `retry-${marker}`)}.\r\n`),
              'QUIT',
            ]);
            assert.match(ok[5]!, /^250 /, ok.join('\n'));
            const client = await faulted;
            try {
              // released at the failure, not only when the client leaves
              const until = Date.now() + 5000;
              while (proxy.faultedOpen > 0 && Date.now() < until)
                await new Promise((r) => setTimeout(r, 20));
              assert.equal(proxy.faultedOpen, 0, 'the faulted backend connection was closed');
              // closed at once: a QUIT to a stalled server only makes the client wait longer
              assert.doesNotMatch(proxy.afterStall, /QUIT/);
              assert.match(await client.cmd('RSET'), /^250 /, 'the faulted session goes on');
            } finally {
              client.close();
            }
            const msgs = await waitForInbox(mailbox, to, (m) => count(m, `retry-${marker}`) === 1);
            assert.equal(count(msgs, `retry-${marker}`), 1, 'the healthy session delivered');
            if (step !== 'final reply') {
              // nothing of the faulted message reached a mailbox (no end of data was sent)
              for (const u of backend.faulted())
                assert.equal(count(await waitForInbox(mailbox, u, () => false, 300), marker), 0);
            }
            const log = await gw.relayLog();
            assert.ok(
              log.every((e) => e.accepted === true || String(e.reply).startsWith('4')),
              JSON.stringify(log),
            );
            assert.equal(log.filter((e) => e.accepted === true).length, 1, 'only the retry');
          } finally {
            await gw.stop();
            await proxy.close();
          }
        });
      }
    }
  }

  it('the client leaves while Postfix stalls at RCPT: the backend connection is closed', async () => {
    const proxy = await startFaultProxy(
      { host: '127.0.0.1', port: lab.mta.port },
      { trigger: { dir: 'up', match: /^RCPT TO/m }, action: 'stall' },
    );
    const gw = await startGatewaySmtp(
      {
        domains: lab.domains,
        source: lab.source,
        destination: lab.destination,
        mta: { url: `smtp://127.0.0.1:${proxy.port}?tls=none` },
      },
      { timeouts: { commandMs: 1500 } },
    );
    try {
      const d = await SmtpDialog.open(gw.port());
      await d.reply();
      await d.cmd('EHLO x.test');
      await d.cmd('MAIL FROM:<a@remote.test>');
      d.write(`RCPT TO:<${bob.user}>\r\n`);
      const deadline = Date.now() + 10_000;
      while (proxy.struck === 0 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      assert.equal(proxy.struck, 1);
      d.close();
      const until = Date.now() + 8000;
      while (proxy.faultedOpen > 0 && Date.now() < until)
        await new Promise((r) => setTimeout(r, 20));
      assert.equal(proxy.faultedOpen, 0, 'the backend connection was closed');
    } finally {
      await gw.stop();
      await proxy.close();
    }
  });

  it('Postfix stops reading in the middle of a big message: 451 after the dot, bounded by the data timeout', async () => {
    // 16 MB is more than the loopback TCP buffers hold: the gateway's writes must wait
    // for a window that never opens (relay.ts, drained()).
    const proxy = await startFaultProxy(
      { host: '127.0.0.1', port: lab.mta.port },
      { trigger: { dir: 'up', match: /MIDDLE-OF-DATA/ }, action: 'jam' },
    );
    const gw = await startGatewaySmtp(
      {
        domains: lab.domains,
        source: lab.source,
        destination: lab.destination,
        mta: { url: `smtp://127.0.0.1:${proxy.port}?tls=none` },
      },
      { deps: { limits: { dataReplyMs: 1500 } } },
    );
    const d = await SmtpDialog.open(gw.port());
    try {
      await d.reply();
      await d.cmd('EHLO x.test');
      assert.match(await d.cmd('MAIL FROM:<a@remote.test>'), /^250 /);
      assert.match(await d.cmd(`RCPT TO:<${bob.user}>`), /^250 /);
      assert.match(await d.cmd('DATA'), /^354 /);
      d.write(`${mail('a@remote.test', bob.user, 'jammed', '')}MIDDLE-OF-DATA\r\n`);
      const line = `${'x'.repeat(998)}\r\n`;
      for (let i = 0; i < 16 * 1024; i++) d.write(line);
      d.write('.\r\n');
      assert.match(await d.reply(30_000), /^451 4\.4\.1 /);
      assert.equal(proxy.struck, 1);
      assert.match(gw.logText(), /took no data for 1500 ms/, 'the write waited and gave up');
      assert.match(await d.cmd('RSET'), /^250 /, 'the session goes on');
      assert.equal((await gw.relayLog()).filter((e) => e.accepted === true).length, 0);
    } finally {
      d.close();
      await gw.stop();
      await proxy.close();
    }
  });

  /**
   * One transaction to `rcpts`, on a client connection left open for the caller. A fault
   * before any recipient was accepted must answer RCPT with 451; one after must answer
   * the end of DATA with 451.
   */
  async function faultedTransaction(
    port: number,
    marker: string,
    rcpts: ReadonlyArray<{ user: string }>,
    failsAt: 'rcpt' | 'dot',
  ): Promise<SmtpDialog> {
    const d = await SmtpDialog.open(port);
    const seen: string[] = [];
    try {
      seen.push(await d.reply());
      seen.push(await d.cmd('EHLO x.test'));
      seen.push(await d.cmd('MAIL FROM:<a@remote.test>'));
      const r1 = await d.cmd(`RCPT TO:<${rcpts[0]!.user}>`);
      seen.push(r1);
      if (failsAt === 'rcpt') {
        assert.match(r1, /^451 4\.4\.1 /, seen.join('\n'));
        return d;
      }
      assert.match(r1, /^250 /, seen.join('\n'));
      for (const r of rcpts.slice(1)) seen.push(await d.cmd(`RCPT TO:<${r.user}>`));
      seen.push(await d.cmd('DATA'));
      assert.match(seen.at(-1)!, /^354 /, seen.join('\n'));
      const body = `${'padding line\r\n'.repeat(50)}MIDDLE-OF-DATA\r\n${'more\r\n'.repeat(50)}`;
      d.write(`${mail('a@remote.test', rcpts[0]!.user, marker, '')}${body}.\r\n`);
      const end = await d.reply();
      seen.push(end);
      assert.match(end, /^451 4\.4\.1 /, seen.join('\n'));
      return d;
    } catch (err) {
      d.close();
      throw err;
    }
  }
});
