/**
 * Every socket and timer the transport takes is released, however a connection ends:
 * a clean close, the server hanging up mid-read, a read timeout, an endless line, bytes
 * injected after STARTTLS, a failed or stalled TLS handshake, a refused connect, a socket
 * handed over by detach(), a streaming reader closed. Many connections of each kind, then
 * Node's own list of live handles (process.getActiveResourcesInfo: TCP and TLS wraps,
 * timers) must be back where it started once the stand-in servers are gone.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { before, describe, it } from 'node:test';
import { parseEndpoint } from '../../src/core/config/endpoint.js';
import { NetError } from '../../src/core/net/errors.js';
import { openTransport } from '../../src/core/net/open.js';
import { Reply } from '../../src/core/net/transport.js';
import { freePort, testTls, type TestTls } from '../support/index.js';

const ROUNDS = 15;
const WATCHED = ['TCPSocketWrap', 'TCPServerWrap', 'TLSWrap', 'Timeout'];

function live(): Record<string, number> {
  const out: Record<string, number> = Object.fromEntries(WATCHED.map((k) => [k, 0]));
  for (const r of process.getActiveResourcesInfo()) if (r in out) out[r]! += 1;
  return out;
}

type Behaviour = (sock: net.Socket) => void;

/** A stand-in server; `behave` picks what it does with each new connection. */
async function server(
  behave: () => Behaviour,
  secure?: TestTls,
): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const onConn = (sock: net.Socket): void => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => undefined);
    // read (and drop) what the client sends, so its close is seen at once
    sock.resume();
    behave()(sock);
  };
  const srv = secure
    ? tls.createServer(
        { key: readFileSync(secure.keyFile), cert: readFileSync(secure.certFile) },
        onConn,
      )
    : net.createServer(onConn);
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  return {
    port: (srv.address() as net.AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      srv.close();
      await once(srv, 'close');
    },
  };
}

/** long: a timer or socket left behind by any path is still live when the count is taken */
const LONG = 60_000;
const TIMEOUTS = { connectMs: LONG, handshakeMs: LONG };

describe('transport under churn', () => {
  let t: TestTls;
  before(async () => {
    t = await testTls();
  });

  it('releases sockets and timers on every ending', async () => {
    let behaviour: Behaviour = () => undefined;
    const plain = await server(() => behaviour);
    const secure = await server(() => (s) => void s.write('* OK secure\r\n'), t);
    const closedPort = await freePort();
    await new Promise((r) => setTimeout(r, 50));
    const start = live();
    const ep = (tlsMode: string, port = plain.port): ReturnType<typeof parseEndpoint> =>
      parseEndpoint(`imap://127.0.0.1:${port}?tls=${tlsMode}&servername=localhost`);
    const opts = { timeouts: TIMEOUTS, ca: t.ca };
    const codes = new Map<string, number>();
    const expectFail = async (p: Promise<unknown>): Promise<void> => {
      try {
        await p;
        assert.fail('expected a failure');
      } catch (err) {
        assert.ok(err instanceof NetError, String(err));
        codes.set(err.code, (codes.get(err.code) ?? 0) + 1);
      }
    };

    for (let i = 0; i < ROUNDS; i++) {
      // clean close after a greeting (plain, with fast reads)
      behaviour = (s) => void s.write('* OK hi\r\n');
      const a = await openTransport(ep('none'), 'a', opts);
      assert.equal(await a.readLine(LONG), '* OK hi');
      a.close();

      // the server hangs up while a read waits
      behaviour = (s) => void s.end('* OK bye\r\n');
      const b = await openTransport(ep('none'), 'b', opts);
      await b.readLine(LONG);
      await expectFail(b.readLine(LONG));
      b.close();

      // a silent server: the read times out
      behaviour = () => undefined;
      const c = await openTransport(ep('none'), 'c', opts);
      await expectFail(c.readLine(30));
      c.close();

      // an endless line
      behaviour = (s) => void s.write(Buffer.alloc(70_000, 0x78));
      const d = await openTransport(ep('none'), 'd', opts);
      await expectFail(d.readLine(new Reply(LONG)));
      d.close();

      // bytes injected after the STARTTLS go-ahead: the transport closes itself
      behaviour = (s) => void s.write('a OK go\r\n* OK injected\r\n');
      const e = await openTransport(ep('starttls'), 'e', opts);
      await e.readLine(LONG);
      await expectFail(e.startTls());

      // implicit TLS to a plain server that talks: the handshake fails
      behaviour = (s) => void s.write('* OK plain\r\n');
      await expectFail(openTransport(ep('implicit'), 'f', opts));

      // implicit TLS to a plain server that says nothing: the handshake times out
      behaviour = () => undefined;
      const stalled = { ...opts, timeouts: { connectMs: LONG, handshakeMs: 30 } };
      await expectFail(openTransport(ep('implicit'), 'g', stalled));

      // nothing listens
      await expectFail(openTransport(ep('none', closedPort), 'h', opts));

      // implicit TLS that works, then close
      const ok = await openTransport(ep('implicit', secure.port), 'i', opts);
      assert.equal(await ok.readLine(LONG), '* OK secure');
      ok.close();

      // handed over to the splice, which destroys it
      behaviour = (s) => void s.write('* OK hi\r\n* 1 EXISTS\r\n');
      const j = await openTransport(ep('none'), 'j', opts);
      await j.readLine(LONG);
      const { socket } = j.detach();
      socket.destroy();

      // a streaming reader, closed by its owner
      behaviour = (s) => void s.write('* OK hi\r\n');
      const k = await openTransport(ep('none'), 'k', { ...opts, fastReads: false });
      const ended: string[] = [];
      k.stream(
        () => undefined,
        (err) => ended.push(err.code),
      );
      k.close();
      assert.deepEqual(ended, ['ECLOSED']);
    }

    assert.deepEqual(Object.fromEntries(codes), {
      ECLOSED: ROUNDS,
      ETIMEOUT: 2 * ROUNDS,
      ETOOLONG: ROUNDS,
      EINJECTION: ROUNDS,
      ETLS: ROUNDS,
      ECONNECT: ROUNDS,
    });
    // counted with the servers still up: a socket we failed to close is still open
    const deadline = Date.now() + 3000;
    let now = live();
    const settled = (): boolean => WATCHED.every((k) => now[k]! <= start[k]!);
    while (Date.now() < deadline && !settled()) {
      await new Promise((r) => setTimeout(r, 20));
      now = live();
    }
    assert.deepEqual(now, start);
    await plain.close();
    await secure.close();
  });
});
