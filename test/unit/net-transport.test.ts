/**
 * Closing a backend connection ends the reads that wait on it (src/core/upstreams/
 * connection.ts): a session that drops a stalled backend (client gone, shutdown, QUIT
 * after a failure) must not leave a read pending until its timeout. No network: a
 * stand-in socket, and the checks wait for event-loop turns only, never for a timer.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { describe, it } from 'node:test';
import { parseEndpoint } from '../../src/core/config/endpoint.js';
import { Transport } from '../../src/core/net/transport.js';
import { StandInSocket } from '../support/stand-in-socket.js';
import { NetError } from '../../src/core/net/errors.js';

const TIMEOUTS = { connectMs: 5000, greetingMs: 5000, commandMs: 5000 };
const EP = parseEndpoint('smtp://backend.test:25');

function open(): { conn: Transport; sock: StandInSocket } {
  const sock = new StandInSocket();
  const conn = new Transport(sock as unknown as Socket, EP, 'backend', {
    timeouts: TIMEOUTS,
  });
  return { conn, sock };
}

/** What became of a read after a few turns of the event loop. */
function watch(p: Promise<string>): () => 'pending' | 'ok' | NetError | unknown {
  let state: 'pending' | 'ok' | unknown = 'pending';
  p.then(
    () => (state = 'ok'),
    (err: unknown) => (state = err),
  );
  return () => state;
}

const turns = async (n = 5): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

const closedError = (s: unknown): boolean => s instanceof NetError && s.code === 'ECLOSED';

describe('Transport.close', () => {
  it('ends a read that waits for a line', async () => {
    const { conn } = open();
    const read = watch(conn.readLine(4000, 'the greeting'));
    await turns();
    assert.equal(read(), 'pending');
    conn.close();
    await turns();
    assert.ok(closedError(read()), String(read()));
  });

  it('wakes every waiting read, not only the last one', async () => {
    const { conn, sock } = open();
    const first = watch(conn.readLine(4000, 'the reply to RCPT TO'));
    const second = watch(conn.readLine(4000, 'the reply to QUIT'));
    await turns();
    sock.emit('data', Buffer.from('250 ok\r\n'));
    await turns();
    // one line for two readers: one gets it, the other goes on waiting
    assert.deepEqual([first(), second()].filter((s) => s === 'ok').length, 1);
    conn.close();
    await turns();
    assert.ok([first(), second()].every((s) => s === 'ok' || closedError(s)));
  });
});
