/**
 * The gateway's logins to backends (IMAP, POP3, SMTP) against a stand-in server on
 * loopback that answers with a fuzzed script of plausible and broken reply lines, then
 * closes. Whatever it says, a login either succeeds or fails with a NetError (the
 * transport's, or its UpstreamError kind), and it never waits for the timeouts: the
 * reply readers (IMAP tagged/untagged and literal continuations, POP3 +OK/-ERR and CAPA,
 * SMTP multi-line) see every end of the stream.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { parseEndpoint } from '../../../src/core/config/endpoint.js';
import { openBackend } from '../../../src/core/smtp/smtp-client.js';
import { NetError } from '../../../src/core/net/errors.js';
import { imapLogin } from '../../../src/core/imap/backend.js';
import { pop3Login } from '../../../src/core/pop3/backend.js';
import { checkAsync } from './support.js';

const TIMEOUTS = { connectMs: 3000, greetingMs: 3000, commandMs: 3000 };
const CLIENT = {
  address: '192.0.2.7',
  port: 40000,
  localAddress: '127.0.0.1',
  localPort: 143,
  session: 's1',
};
const CREDS = { user: 'alice@example.org', password: 'secret' };

const LINES = {
  imap: [
    '* OK [CAPABILITY IMAP4rev1 LITERAL+ SASL-IR ID] hi',
    '* OK hi',
    '* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] hi',
    '* PREAUTH',
    '* BYE go away',
    '* CAPABILITY IMAP4rev1 ID',
    '* CAPABILITY IMAP4rev1 LITERAL+',
    '* ID NIL',
    '* LIST () "/" INBOX',
    '* OK {5}',
    '+ go',
    '+',
    'ap1 OK done',
    'ap2 OK [CAPABILITY IMAP4rev1 IDLE] in',
    'ap3 OK',
    'ap4 OK',
    'ap5 OK',
    'ap2 NO [AUTHENTICATIONFAILED] no',
    'ap3 BAD what',
    'ap2 MAYBE',
    'ap1',
  ],
  pop3: [
    '+OK hi',
    '+OK [XCLIENT] hi',
    '-ERR no',
    '-ERR [IN-USE] busy',
    '+OK',
    'STLS',
    'XCLIENT',
    'USER',
    '.',
    '..',
    'hello',
  ],
  smtp: [
    '220 hi',
    '250-hello',
    '250-STARTTLS',
    '250-XCLIENT ADDR PORT NAME HELO PROTO',
    '250-AUTH PLAIN LOGIN',
    '250 OK',
    '250',
    '334 VXNlcm5hbWU6',
    '235 ok',
    '535 5.7.8 no',
    '454 later',
    '421 bye',
    '220',
    '25',
    '2500 x',
  ],
};

function scriptArb(protocol: keyof typeof LINES): fc.Arbitrary<Buffer> {
  const line = fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom(...LINES[protocol]) },
    { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
  );
  const end = fc.constantFrom('\r\n', '\r\n', '\n', '', '\r');
  return fc
    .array(fc.tuple(line, end), { maxLength: 16 })
    .map((ls) => Buffer.from(ls.map(([l, e]) => l + e).join(''), 'latin1'));
}

describe('fuzz: logins to a backend that says anything', () => {
  let server: Server;
  let port = 0;
  let script: Buffer = Buffer.alloc(0);
  before(async () => {
    server = createServer((s) => {
      s.on('error', () => undefined);
      s.resume(); // read the gateway's commands, so that its close is seen
      s.end(script);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });
  after(async () => {
    await new Promise((r) => server.close(r));
  });

  async function outcome(login: () => Promise<{ close(): void }>): Promise<void> {
    const started = Date.now();
    try {
      (await login()).close();
    } catch (err) {
      assert.ok(err instanceof NetError, `not a NetError: ${String(err)}`);
    }
    assert.ok(Date.now() - started < TIMEOUTS.commandMs, 'waited for a timeout');
  }

  const tlsArb = fc.constantFrom('none', 'starttls');
  const opts = { timeouts: TIMEOUTS, label: 'fuzz backend', forwardClient: true };

  it('IMAP', async () => {
    await checkAsync(
      fc.asyncProperty(scriptArb('imap'), tlsArb, fc.boolean(), async (s, tls, master) => {
        script = s;
        const ep = parseEndpoint(`imap://127.0.0.1:${port}?tls=${tls}&verify=false`);
        const creds = master ? { ...CREDS, master: { user: 'm', password: 'p' } } : CREDS;
        await outcome(async () => {
          const up = await imapLogin(ep, creds, CLIENT, opts);
          return { close: () => up.socket.destroy() };
        });
      }),
    );
  });

  it('POP3', async () => {
    await checkAsync(
      fc.asyncProperty(scriptArb('pop3'), tlsArb, fc.boolean(), async (s, tls, master) => {
        script = s;
        const ep = parseEndpoint(`pop3://127.0.0.1:${port}?tls=${tls}&verify=false`);
        const creds = master ? { ...CREDS, master: { user: 'm', password: 'p' } } : CREDS;
        await outcome(async () => {
          const up = await pop3Login(ep, creds, CLIENT, opts);
          return { close: () => up.socket.destroy() };
        });
      }),
    );
  });

  it('SMTP', async () => {
    await checkAsync(
      fc.asyncProperty(scriptArb('smtp'), tlsArb, fc.boolean(), async (s, tls, auth) => {
        script = s;
        const ep = parseEndpoint(`smtp://127.0.0.1:${port}?tls=${tls}&verify=false`);
        await outcome(() =>
          openBackend(ep, {
            label: 'fuzz backend',
            timeouts: TIMEOUTS,
            heloName: 'gw.test',
            client: { address: CLIENT.address, port: CLIENT.port, helo: 'c', proto: 'ESMTP' },
            auth: auth ? CREDS : undefined,
          }),
        );
      }),
    );
  });
});
