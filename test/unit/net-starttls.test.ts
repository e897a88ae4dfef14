/**
 * The STARTTLS injection check of the transport (src/core/net/transport.ts), through each
 * protocol and each user of the transport: a stand-in server answers STARTTLS/STLS with
 * its go-ahead and, in the same write, one more reply an attacker could have injected
 * before TLS (RFC 3207 4.2, RFC 2595 4, CVE-2011-0411 class). Every client must refuse it
 * before any TLS byte is sent; the same server without the extra bytes gets a handshake
 * (so the test can tell "refused the injection" from "never tried TLS").
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { describe, it } from 'node:test';
import { parseEndpoint } from '../../src/core/config/endpoint.js';
import { openBackend } from '../../src/core/smtp/smtp-client.js';
import { NetError } from '../../src/core/net/errors.js';
import { ImapError } from '../../src/core/transfer/copy/errors.js';
import { ImapSession } from '../../src/core/transfer/copy/imap-session.js';
import { Pop3Client } from '../../src/core/transfer/pop3/pop3-client.js';
import { imapLogin } from '../../src/core/imap/backend.js';
import { pop3Login } from '../../src/core/pop3/backend.js';

const TIMEOUTS = { connectMs: 3000, greetingMs: 3000, commandMs: 3000 };
const CLIENT = {
  address: '192.0.2.1',
  port: 1234,
  localAddress: '127.0.0.1',
  localPort: 143,
  session: 's1',
};

interface Dialect {
  greeting: string;
  /** the reply to each command line; undefined: no reply */
  answer: (line: string) => string | undefined;
  /** the go-ahead to STARTTLS/STLS (the tag of `line` where the protocol has tags) */
  goAhead: (line: string) => string | undefined;
  /** what an attacker appends */
  injected: string;
}

const tagOf = (line: string): string => line.split(' ')[0] ?? '';

const IMAP: Dialect = {
  greeting: '* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready\r\n',
  answer: (l) =>
    /^\S+ CAPABILITY/i.test(l)
      ? `* CAPABILITY IMAP4rev1 STARTTLS\r\n${tagOf(l)} OK done\r\n`
      : undefined,
  goAhead: (l) => (/^\S+ STARTTLS/i.test(l) ? `${tagOf(l)} OK Begin TLS\r\n` : undefined),
  injected: '* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] injected\r\n',
};

const POP3: Dialect = {
  greeting: '+OK ready\r\n',
  answer: (l) => (l === 'CAPA' ? '+OK\r\nSTLS\r\nUSER\r\n.\r\n' : undefined),
  goAhead: (l) => (l === 'STLS' ? '+OK Begin TLS\r\n' : undefined),
  injected: '+OK injected\r\n',
};

const SMTP: Dialect = {
  greeting: '220 ready\r\n',
  answer: (l) => (/^EHLO /i.test(l) ? '250-hi\r\n250-STARTTLS\r\n250 OK\r\n' : undefined),
  goAhead: (l) => (/^STARTTLS/i.test(l) ? '220 go ahead\r\n' : undefined),
  injected: '250 injected\r\n',
};

/**
 * A plain server that speaks `d` up to the go-ahead, with or without the injection, and
 * then reports whether the client started a TLS handshake (a ClientHello, 0x16).
 */
async function standIn(
  d: Dialect,
  inject: boolean,
): Promise<{ port: number; tlsTried: () => boolean; close: () => Promise<void> }> {
  let tlsTried = false;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('error', () => undefined);
    sock.write(d.greeting);
    let buf = '';
    let upgraded = false;
    sock.on('data', (chunk: Buffer) => {
      if (upgraded) {
        if (chunk[0] === 0x16) tlsTried = true;
        sock.destroy();
        return;
      }
      buf += chunk.toString('latin1');
      let i: number;
      while (!upgraded && (i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i).replace(/\r$/, '');
        buf = buf.slice(i + 1);
        const go = d.goAhead(line);
        if (go !== undefined) {
          upgraded = true;
          sock.write(inject ? go + d.injected : go);
          continue;
        }
        const a = d.answer(line);
        if (a !== undefined) sock.write(a);
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    tlsTried: () => tlsTried,
    close: async () => {
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

type Client = (port: number) => Promise<unknown>;

const clients: Array<[string, Dialect, Client, (err: unknown) => boolean]> = [
  [
    'IMAP, gateway backend',
    IMAP,
    (port) =>
      imapLogin(
        parseEndpoint(`imap://127.0.0.1:${port}?tls=starttls`),
        { user: 'u', password: 'p' },
        CLIENT,
        { label: 'source IMAP', timeouts: TIMEOUTS, forwardClient: false },
      ),
    (e) => e instanceof NetError && e.code === 'EINJECTION',
  ],
  [
    'IMAP, copier',
    IMAP,
    (port) =>
      ImapSession.connect({
        endpoint: parseEndpoint(`imap://127.0.0.1:${port}?tls=starttls`),
        timeouts: TIMEOUTS,
        label: 'source',
      }),
    (e) =>
      e instanceof ImapError && e.code === 'ETLS' && /after the STARTTLS reply/.test(e.message),
  ],
  [
    'POP3, gateway backend',
    POP3,
    (port) =>
      pop3Login(
        parseEndpoint(`pop3://127.0.0.1:${port}?tls=starttls`),
        { user: 'u', password: 'p' },
        CLIENT,
        { label: 'source POP3', timeouts: TIMEOUTS, forwardClient: false },
      ),
    (e) => e instanceof NetError && e.code === 'EINJECTION',
  ],
  [
    'POP3, copier',
    POP3,
    (port) =>
      Pop3Client.connect({
        host: '127.0.0.1',
        port,
        tls: 'starttls',
        user: 'u',
        password: 'p',
        timeoutMs: 3000,
      }),
    (e) =>
      e instanceof NetError && e.code === 'EINJECTION' && /after its STLS reply/.test(e.message),
  ],
  [
    'SMTP, gateway backend',
    SMTP,
    (port) =>
      openBackend(parseEndpoint(`smtp://127.0.0.1:${port}?tls=starttls`), {
        label: 'destination SMTP',
        timeouts: TIMEOUTS,
        heloName: 'gw.test',
      }),
    (e) => e instanceof NetError && e.code === 'EINJECTION',
  ],
];

describe('STARTTLS injection check, per protocol and per user of the transport', () => {
  for (const [name, dialect, client, refused] of clients) {
    it(`${name}: bytes after the go-ahead are refused before any TLS byte`, async () => {
      const srv = await standIn(dialect, true);
      try {
        await assert.rejects(client(srv.port), (err: unknown) => {
          assert.ok(refused(err), `unexpected: ${String(err)}`);
          return true;
        });
        await new Promise((r) => setTimeout(r, 50));
        assert.equal(srv.tlsTried(), false, 'a TLS handshake was started anyway');
      } finally {
        await srv.close();
      }
    });

    it(`${name}: without the extra bytes the client goes on to the handshake`, async () => {
      const srv = await standIn(dialect, false);
      try {
        // the stand-in speaks no TLS: the handshake fails, after it was tried
        await assert.rejects(client(srv.port), (err: unknown) => !refused(err));
        assert.equal(srv.tlsTried(), true, 'no TLS handshake was tried');
      } finally {
        await srv.close();
      }
    });
  }
});
