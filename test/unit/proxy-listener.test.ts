/**
 * A PROXY protocol listener (listeners.ts): the header is read before anything else, also
 * before the TLS handshake of an implicit-TLS listener (993/995), whose bytes may follow the
 * header in the same read; the connection's slot is taken for the header's client, and a
 * connection without a header never reaches admit.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import {
  startListener,
  TlsProvider,
  type AcceptHandlers,
  type RunningListener,
} from '../../src/core/listen/listeners.js';
import type { Peer } from '../../src/core/listen/proxy-gate.js';
import { ProxyGate } from '../../src/core/listen/proxy-gate.js';
import { DEFAULT_LIMITS } from '../../src/core/limits.js';
import { testTls } from '../support/tls.js';

describe('a PROXY protocol listener', () => {
  let listener: RunningListener;
  let ca = '';
  const admitted: Peer[] = [];
  const refused: string[] = [];
  let onReady: (socket: Socket, peer: Peer) => void = () => undefined;

  before(async () => {
    const t = await testTls();
    ca = t.ca;
    const handlers: AcceptHandlers = {
      admit: (_s, _spec, peer) => {
        admitted.push(peer);
        return () => undefined;
      },
      ready: (socket, _spec, _slot, peer) => onReady(socket, peer),
      proxyRefused: (_spec, r) => refused.push(`${r.reason}: ${r.detail}`),
      fault: (err) => {
        throw err;
      },
    };
    const gate = new ProxyGate(['127.0.0.1'], () => ({
      ...DEFAULT_LIMITS.connections,
      proxyHeaderMs: 300,
    }));
    listener = await startListener(
      {
        name: 'imaps',
        protocol: 'imap',
        host: '127.0.0.1',
        port: 0,
        implicitTls: true,
        proxy: gate,
      },
      new TlsProvider({ cert: readFileSync(t.certFile), key: readFileSync(t.keyFile) }),
      handlers,
      2000,
    );
  });
  after(() => listener.close());

  it('reads the header, then the handshake, and admits the header client', async () => {
    const ready = new Promise<{ socket: Socket; peer: Peer }>((resolve) => {
      onReady = (socket, peer) => resolve({ socket, peer });
    });
    const raw = connect({ port: listener.address.port, host: '127.0.0.1' });
    // The ClientHello follows the header at once, without waiting for anything.
    raw.cork();
    raw.write('PROXY TCP4 203.0.113.9 198.51.100.1 40000 993\r\n');
    const secure = tlsConnect({ socket: raw, ca, servername: 'localhost' });
    process.nextTick(() => raw.uncork());
    secure.on('error', () => undefined);
    const { socket, peer } = await ready;
    assert.deepEqual(peer, {
      address: '203.0.113.9',
      port: 40000,
      localAddress: '198.51.100.1',
      localPort: 993,
    });
    assert.equal(admitted.at(-1)?.address, '203.0.113.9');
    socket.end('* OK hello\r\n');
    const text = await new Promise<string>((r) => secure.once('data', (d) => r(String(d))));
    assert.equal(text, '* OK hello\r\n');
    secure.destroy();
  });

  it('closes a connection that starts its handshake without a header', async () => {
    const before = admitted.length;
    const raw = connect({ port: listener.address.port, host: '127.0.0.1' });
    const secure = tlsConnect({ socket: raw, ca, servername: 'localhost' });
    const err = await new Promise<Error>((r) => secure.once('error', r));
    assert.ok(err);
    assert.equal(admitted.length, before);
    assert.match(refused.at(-1) ?? '', /bad-header: no PROXY protocol header/);
  });
});
