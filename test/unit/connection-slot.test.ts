/**
 * A ClientConnection releases its connection-limit slot exactly once, also for a socket
 * that was already closed when the session started (a TLS socket that died right after
 * its handshake), where no 'close' event is left to come.
 */
import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { EventBus } from '../../src/core/bus.js';
import { startImapSession } from '../../src/core/imap/session.js';
import { startPop3Session } from '../../src/core/pop3/session.js';
import type { FrontendDeps, SessionInfo } from '../../src/core/sessions/types.js';
import { DEFAULT_LIMITS } from '../../src/core/limits.js';
import { silentLogger } from '../../src/core/log/logger.js';

function info(protocol: 'imap' | 'pop3'): SessionInfo {
  return {
    id: 'slot-test',
    listener: {
      name: protocol,
      protocol,
      implicitTls: true,
      secureContext: () => undefined,
      plaintextLogin: () => true,
    },
    client: {
      address: '127.0.0.1',
      port: 1,
      localAddress: '127.0.0.1',
      localPort: 2,
      session: 'x',
    },
  };
}

describe('ClientConnection slot', () => {
  let server: Server;
  let port = 0;
  before(async () => {
    server = createServer((s) => s.on('error', () => undefined));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });
  after(() => server.close());

  for (const protocol of ['imap', 'pop3'] as const) {
    it(`${protocol}: a socket closed before the session started still gives its slot back, once`, async () => {
      const accepted = new Promise<Socket>((r) => server.once('connection', r));
      const c = connect({ port, host: '127.0.0.1' });
      c.on('error', () => undefined);
      const sock = await accepted;
      sock.destroy();
      await new Promise((r) => sock.once('close', r));
      const bus = new EventBus();
      const closed: string[] = [];
      bus.on('session.closed', (e) => closed.push(e.reason));
      let released = 0;
      const deps: FrontendDeps = {
        limits: DEFAULT_LIMITS.preauth,
        spliceIdleMs: 60_000,
        bus,
        logger: silentLogger,
        login: () => Promise.reject(new Error('not reached')),
        track: () => () => undefined,
        stopping: () => false,
      };
      const start = protocol === 'imap' ? startImapSession : startPop3Session;
      start(sock, info(protocol), deps, () => released++);
      await new Promise((r) => setImmediate(r));
      assert.equal(released, 1);
      assert.deepEqual(closed, ['client-closed']);
      c.destroy();
    });
  }
});
