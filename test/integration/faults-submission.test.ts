/**
 * Submission faults (issue #10, item 6): a fault proxy in front of the source's real
 * Postfix submission service (SASL against the source Dovecot) closes or stalls the
 * gateway's first connection to it: before the greeting, during AUTH, at MAIL on the
 * connection AUTH left open, mid-DATA, before the final reply. The client gets a 4xx
 * (454 4.7.0 to AUTH, 451 otherwise) or, where a fresh connection can do the step
 * unnoticed, the step done; never a 250 for mail not relayed. A second session through
 * the same gateway, started while a stalled one still waits, sends. Stalls end by the
 * gateway's own timeouts, set short here.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Credentials, PostfixInstance } from '../support/index.js';
import { startFaultProxy, type FaultScript } from './cut-proxy.js';
import {
  count,
  mail,
  SmtpDialog,
  startGatewaySmtp,
  startSmtpLab,
  startSubmissionMta,
  waitForInbox,
  type SmtpLab,
} from './smtp-support.js';

const D = 'example.org';
const bob: Credentials = { user: `bob@${D}`, password: 'bob-secret' };
const dan: Credentials = { user: `dan@${D}`, password: 'dan-secret' };

type Step = 'greeting' | 'AUTH' | 'MAIL' | 'mid-DATA' | 'final reply';

/** where the faulted session is answered 4xx; 'none': a fresh connection does the step */
type FailsAt = 'auth' | 'mail' | 'dot' | 'none';

const ROWS: Array<{ step: Step; trigger: FaultScript['trigger']; close: FailsAt; stall: FailsAt }> =
  [
    { step: 'greeting', trigger: { dir: 'accept' }, close: 'auth', stall: 'auth' },
    { step: 'AUTH', trigger: { dir: 'up', match: /^AUTH /m }, close: 'auth', stall: 'auth' },
    // a kept connection found closed is replaced at once (lease.ts); a stalled one is not
    { step: 'MAIL', trigger: { dir: 'up', match: /^MAIL FROM/m }, close: 'none', stall: 'mail' },
    {
      step: 'mid-DATA',
      trigger: { dir: 'up', match: /MIDDLE-OF-DATA/ },
      close: 'dot',
      stall: 'dot',
    },
    {
      step: 'final reply',
      trigger: { dir: 'up', match: /\r\n\.\r\n/, pass: 'through' },
      close: 'dot',
      stall: 'dot',
    },
  ];

const authPlain = (c: Credentials): string =>
  `AUTH PLAIN ${Buffer.from(`\0${c.user}\0${c.password}`).toString('base64')}`;

describe('SMTP gateway, submission faults in front of a real Postfix', { timeout: 240_000 }, () => {
  let env: SmtpLab;
  let sub: PostfixInstance;
  before(async () => {
    env = await startSmtpLab({ users: [bob, dan] });
    sub = await startSubmissionMta('srcsub', env.lab.source, env.sasl.source, env.lab, [bob, dan]);
  });
  after(async () => {
    await sub?.stop();
    await env?.stop();
  });

  let n = 0;
  for (const row of ROWS) {
    for (const action of ['close', 'stall'] as const) {
      const failsAt = row[action];
      it(`the submission service ${action === 'close' ? 'closes' : 'stalls'} at ${row.step}: ${failsAt === 'none' ? 'unnoticed' : `4xx at ${failsAt}`}`, async () => {
        const marker = `sub-fault-${++n}-${action}`;
        const proxy = await startFaultProxy(
          { host: '127.0.0.1', port: sub.port },
          { trigger: row.trigger, action },
        );
        const gw = await startGatewaySmtp(env.lab, {
          listen: ['submission'],
          sourceSubmission: `submission://127.0.0.1:${proxy.port}?tls=none`,
          timeouts: { greetingMs: 700, commandMs: 1500 },
          deps: { limits: { dataReplyMs: 1500 } },
        });
        try {
          const faulted = send(gw.port('submission'), marker, failsAt);
          const deadline = Date.now() + 10_000;
          while (proxy.struck === 0 && Date.now() < deadline)
            await new Promise((r) => setTimeout(r, 20));
          assert.equal(proxy.struck, 1, 'the fault struck');
          const ok = await send(gw.port('submission'), `retry-${marker}`, 'none');
          ok.close();
          const client = await faulted;
          try {
            const until = Date.now() + 5000;
            while (proxy.faultedOpen > 0 && Date.now() < until)
              await new Promise((r) => setTimeout(r, 20));
            assert.equal(proxy.faultedOpen, 0, 'the faulted backend connection was closed');
            // the faulted session goes on: its next try gets a connection without the fault
            if (failsAt !== 'none') await sendOn(client, `again-${marker}`, failsAt === 'auth');
          } finally {
            client.close();
          }
          const msgs = await waitForInbox(
            env.lab.source,
            dan,
            (m) =>
              count(m, `retry-${marker}`) === 1 && (failsAt !== 'none' || count(m, marker) === 1),
          );
          assert.equal(count(msgs, `retry-${marker}`), 1, 'the healthy session sent');
          if (failsAt !== 'none')
            assert.equal(
              count(
                await waitForInbox(env.lab.source, dan, (m) => count(m, `again-${marker}`) === 1),
                `again-${marker}`,
              ),
              1,
              'the faulted session sent on its next try',
            );
          if (failsAt === 'none') assert.equal(count(msgs, marker), 1, 'sent without a fuss');
          else if (row.step !== 'final reply') assert.equal(count(msgs, marker), 0);
        } finally {
          await gw.stop();
          await proxy.close();
        }
      });
    }
  }

  /** On a session that met a fault: (AUTH again and) send one message to dan. */
  async function sendOn(d: SmtpDialog, marker: string, auth: boolean): Promise<void> {
    const seen: string[] = [];
    const step = async (line: string, want: RegExp): Promise<void> => {
      seen.push(await d.cmd(line));
      assert.match(seen.at(-1)!, want, seen.join('\n'));
    };
    if (auth) await step(authPlain(bob), /^235 /);
    await step('RSET', /^250 /);
    await step(`MAIL FROM:<${bob.user}>`, /^250 /);
    await step(`RCPT TO:<${dan.user}>`, /^250 /);
    await step('DATA', /^354 /);
    d.write(`${mail(bob.user, dan.user, marker)}.\r\n`);
    seen.push(await d.reply());
    assert.match(seen.at(-1)!, /^250 /, seen.join('\n'));
  }

  /**
   * AUTH as bob and send one message to dan; the client connection is left open for the
   * caller. `failsAt` says which step must be answered 4xx (the rest is not tried then).
   */
  async function send(port: number, marker: string, failsAt: FailsAt): Promise<SmtpDialog> {
    const d = await SmtpDialog.open(port);
    const seen: string[] = [];
    const step = async (line: string, want: RegExp): Promise<void> => {
      seen.push(await d.cmd(line));
      assert.match(seen.at(-1)!, want, seen.join('\n'));
    };
    try {
      seen.push(await d.reply());
      await step('EHLO x.test', /^250[ -]/);
      if (failsAt === 'auth') {
        await step(authPlain(bob), /^454 4\.7\.0 /);
        return d;
      }
      await step(authPlain(bob), /^235 /);
      if (failsAt === 'mail') {
        await step(`MAIL FROM:<${bob.user}>`, /^451 4\.4\.1 /);
        return d;
      }
      await step(`MAIL FROM:<${bob.user}>`, /^250 /);
      await step(`RCPT TO:<${dan.user}>`, /^250 /);
      await step('DATA', /^354 /);
      const body = `${'padding line\r\n'.repeat(50)}MIDDLE-OF-DATA\r\n${'more\r\n'.repeat(50)}`;
      d.write(`${mail(bob.user, dan.user, marker, '')}${body}.\r\n`);
      seen.push(await d.reply());
      assert.match(seen.at(-1)!, failsAt === 'dot' ? /^451 4\.4\.1 / : /^250 /, seen.join('\n'));
      return d;
    } catch (err) {
      d.close();
      throw err;
    }
  }
});
