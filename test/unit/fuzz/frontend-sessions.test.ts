/**
 * The IMAP and POP3 pre-login state machines on real loopback sockets, with a stand-in
 * gateway (FrontendDeps, style.md habit 8) whose logins fail, fed fuzzed command streams
 * in random chunks. Whatever the client sends, its session ends when the client does,
 * without a fault (a throw in the session's code), and the gateway's replies stay within
 * a bounded amount per line of input.
 */
import assert from 'node:assert/strict';
import { connect, createServer, type Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { EventBus, type GatewayEvent } from '../../../src/core/bus.js';
import { startImapSession } from '../../../src/core/imap/session.js';
import { startPop3Session } from '../../../src/core/pop3/session.js';
import type { FrontendDeps, SessionInfo } from '../../../src/core/sessions/types.js';
import { DEFAULT_LIMITS } from '../../../src/core/limits.js';
import { createLogger, memorySink } from '../../../src/core/log/index.js';
import { checkAsync, cut, cutsArb, tokenStream } from './support.js';

type Closed = Extract<GatewayEvent, { type: 'session.closed' }>;

const IMAP_TOKENS = [
  'a ',
  'b ',
  '* ',
  'LOGIN ',
  'AUTHENTICATE ',
  'PLAIN',
  'LOGIN',
  'CRAM-MD5',
  'CAPABILITY',
  'NOOP',
  'ID ',
  'ID ("name" "x")',
  'STARTTLS',
  'LOGOUT',
  'SELECT INBOX',
  'alice ',
  '"pw"',
  '{3}\r\n',
  '{3+}\r\n',
  '{0}\r\n',
  'AGFsaWNlAHB3',
  '=',
  '*',
  'dXNlcg==',
  ' ',
  '\r\n',
  '\r\n',
  '\r\n',
  '\n',
  '\0',
];

const POP3_TOKENS = [
  'USER alice',
  'USER ',
  'PASS pw',
  'PASS ',
  'CAPA',
  'STLS',
  'AUTH',
  'AUTH PLAIN',
  'AUTH PLAIN AGFsaWNlAHB3',
  'AUTH LOGIN',
  'AUTH CRAM-MD5',
  'APOP a b',
  'NOOP',
  'QUIT',
  'STAT',
  'AGFsaWNlAHB3',
  'dXNlcg==',
  '=',
  '*',
  ' ',
  '\r\n',
  '\r\n',
  '\r\n',
  '\n',
  '\0',
];

describe('fuzz: IMAP and POP3 sessions before login', () => {
  const bus = new EventBus();
  const sink = memorySink();
  const logger = createLogger({ sink, format: 'json', level: 'warn' });
  const closed = new Map<string, Closed>();
  bus.on('session.closed', (e) => closed.set(e.session, e));
  const deps: FrontendDeps = {
    limits: DEFAULT_LIMITS.preauth,
    spliceIdleMs: 60_000,
    bus,
    logger,
    login: () => Promise.resolve({ ok: false, outcome: 'auth-failed', close: false }),
    track: () => () => undefined,
    stopping: () => false,
  };
  const servers: Record<'imap' | 'pop3', Server | undefined> = { imap: undefined, pop3: undefined };
  const ports = { imap: 0, pop3: 0 };
  let n = 0;
  /** the session id of the last connection each server took */
  const lastId = { imap: '', pop3: '' };

  before(async () => {
    for (const protocol of ['imap', 'pop3'] as const) {
      const server = createServer((socket) => {
        const id = `f${++n}`;
        lastId[protocol] = id;
        const info: SessionInfo = {
          id,
          listener: {
            name: protocol,
            protocol,
            implicitTls: false,
            secureContext: () => undefined,
            plaintextLogin: () => true,
          },
          client: {
            address: '127.0.0.1',
            port: socket.remotePort ?? 0,
            localAddress: '127.0.0.1',
            localPort: socket.localPort ?? 0,
            session: id,
          },
        };
        if (protocol === 'imap') startImapSession(socket, info, deps, () => undefined);
        else startPop3Session(socket, info, deps, () => undefined);
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      servers[protocol] = server;
      ports[protocol] = (server.address() as { port: number }).port;
    }
  });
  after(async () => {
    for (const s of Object.values(servers)) await new Promise((r) => s?.close(r));
  });

  /** Send the chunks, half-close, read everything until the gateway closes. */
  async function converse(protocol: 'imap' | 'pop3', chunks: Buffer[]): Promise<Buffer> {
    const s = connect({ port: ports[protocol], host: '127.0.0.1' });
    const got: Buffer[] = [];
    s.on('data', (d: Buffer) => got.push(d));
    const done = new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => {
        s.destroy();
        reject(new Error('the gateway did not close after the client did'));
      }, 5000);
      s.on('close', () => {
        clearTimeout(t);
        resolve();
      });
      s.on('error', () => undefined);
    });
    await new Promise<void>((r) => s.once('connect', () => r()));
    for (const c of chunks) {
      if (s.destroyed) break;
      s.write(c);
      await new Promise((r) => setImmediate(r));
    }
    s.end();
    await done;
    return Buffer.concat(got);
  }

  for (const [protocol, tokens] of [
    ['imap', IMAP_TOKENS],
    ['pop3', POP3_TOKENS],
  ] as const) {
    it(`${protocol}: no fault, no hang, bounded replies`, async () => {
      await checkAsync(
        fc.asyncProperty(tokenStream(tokens, 40), cutsArb, async (bytes, cuts) => {
          const out = await converse(protocol, cut(bytes, cuts).slice(0, 64));
          const id = lastId[protocol];
          for (let i = 0; i < 100 && !closed.has(id); i++)
            await new Promise((r) => setTimeout(r, 5));
          const end = closed.get(id);
          assert.ok(end, 'no session.closed event');
          assert.notEqual(end.reason, 'error', `fault: ${end.detail}\n${sink.text().slice(-2000)}`);
          const lines = bytes.toString('latin1').split('\n').length;
          assert.ok(out.length <= 400 + 300 * lines, `${out.length} bytes out for ${lines} lines`);
        }),
      );
    });
  }
});
