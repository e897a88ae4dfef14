/**
 * The splice's socket callbacks run outside any caller's try: a bug there (here a client
 * socket whose write throws) ends that session with reason 'error' and reports the fault;
 * it never reaches the process as an uncaught exception.
 */
import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { splice, type SpliceResult } from '../../src/core/frontends/splice.js';

/** two connected loopback sockets: [the server's end, the client's end] */
async function pair(server: Server, port: number): Promise<[Socket, Socket]> {
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  const c = connect({ port, host: '127.0.0.1' });
  await new Promise<void>((r) => c.once('connect', () => r()));
  return [await accepted, c];
}

describe('splice containment', () => {
  let server: Server;
  let port = 0;
  before(async () => {
    server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });
  after(() => server.close());

  for (const reader of [false, true]) {
    it(`a throw while copying ends the session with reason error (${reader ? 'backendReader' : 'data events'})`, async () => {
      const [client, clientPeer] = await pair(server, port);
      const [backendPeer, backend] = await pair(server, port);
      client.write = () => {
        throw new Error('injected: write threw');
      };
      const faults: unknown[] = [];
      const closed = new Promise<SpliceResult>((resolve) => {
        splice(client, backend, {
          idleMs: 60_000,
          onClose: resolve,
          onFault: (err) => faults.push(err),
          backendReader: reader
            ? (sink) => backend.on('data', (chunk: Buffer) => void sink(chunk))
            : undefined,
        });
      });
      backendPeer.write('* OK from the backend\r\n');
      const r = await closed;
      assert.equal(r.reason, 'error');
      assert.match(r.detail ?? '', /injected: write threw/);
      assert.equal(faults.length, 1);
      await new Promise((res) => setImmediate(res));
      assert.ok(client.destroyed && backend.destroyed, 'both sides closed');
      clientPeer.destroy();
      backendPeer.destroy();
    });
  }
});
