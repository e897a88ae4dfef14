/**
 * Real connected loopback socket pairs for unit tests of code that copies between sockets
 * (the splice): one listening server per suite, `pair()` per test.
 */
import { after, before } from 'node:test';
import { connect, createServer, type Server, type Socket } from 'node:net';

/** Call at the top of a describe(); `pair()` gives [the server's end, the client's end]. */
export function loopbackPairs(): { pair(): Promise<[Socket, Socket]> } {
  let server: Server;
  let port = 0;
  before(async () => {
    server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });
  after(() => server.close());
  return {
    async pair() {
      const accepted = new Promise<Socket>((r) => server.once('connection', r));
      const c = connect({ port, host: '127.0.0.1' });
      await new Promise<void>((r) => c.once('connect', () => r()));
      return [await accepted, c];
    },
  };
}
