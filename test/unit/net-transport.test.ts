/**
 * The transport to mail servers (src/core/net/transport.ts) on a stand-in socket, no
 * network: closing ends the reads that wait on it (a session that drops a stalled backend
 * must not leave a read pending until its timeout); a reply that never ends is cut by the
 * line cap, the reply cap or the reply deadline; literals, the hand-over to a streaming
 * reader, and the refusal of bytes behind a STARTTLS go-ahead. Most checks wait for
 * event-loop turns only, never for a timer.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { describe, it } from 'node:test';
import { parseEndpoint } from '../../src/core/config/endpoint.js';
import { Reply, Transport } from '../../src/core/net/transport.js';
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

describe('Transport: a reply that never ends is cut with a clear error', () => {
  it('a line without an end is refused once over the cap, without waiting for more', async () => {
    const { conn, sock } = open();
    const read = watch(conn.readLine(4000, 'the greeting'));
    for (let i = 0; i < 70; i++) sock.emit('data', Buffer.alloc(1024, 0x78));
    await turns();
    const err = read();
    assert.ok(err instanceof NetError && err.code === 'ETOOLONG', String(err));
    assert.match((err as Error).message, /backend sent a line longer than 65536 bytes/);
  });

  it('endless continuation lines are cut at the reply cap', async () => {
    const { conn, sock } = open();
    const reply = new Reply(4000, 10_000);
    const lines: string[] = [];
    const done = (async (): Promise<unknown> => {
      try {
        for (;;) lines.push(await conn.readLine(reply, 'the EHLO reply'));
      } catch (err) {
        return err;
      }
    })();
    for (let i = 0; i < 200; i++) sock.emit('data', Buffer.from(`250-${'k'.repeat(96)}\r\n`));
    const err = await done;
    assert.ok(err instanceof NetError && err.code === 'ETOOLONG', String(err));
    assert.match(
      (err as Error).message,
      /backend sent more than 10000 bytes while we waited for the EHLO reply/,
    );
    assert.ok(lines.length < 100, `read ${lines.length} lines`);
    assert.equal(conn.closed, true);
  });

  it('lines that keep coming in time still end at the reply deadline', async () => {
    const { conn, sock } = open();
    const reply = new Reply(150);
    const feed = setInterval(() => sock.emit('data', Buffer.from('* OK still talking\r\n')), 10);
    try {
      const err = await (async (): Promise<unknown> => {
        try {
          for (;;) await conn.readLine(reply, 'the reply to CAPABILITY');
        } catch (e) {
          return e;
        }
      })();
      assert.ok(err instanceof NetError && err.code === 'ETIMEOUT', String(err));
      assert.match((err as Error).message, /sent no the reply to CAPABILITY within 150 ms/);
    } finally {
      clearInterval(feed);
    }
  });
});

describe('Transport: literals, streaming and STARTTLS', () => {
  it('reads a literal across chunks, then the rest of the line', async () => {
    const { conn, sock } = open();
    const got = (async () => {
      const head = await conn.readLine(4000, 'a FETCH');
      const n = Number(/\{(\d+)\}$/.exec(head)?.[1]);
      const body = await conn.readBytes(n, 4000);
      return [head, body.toString('latin1'), await conn.readLine(4000, 'the rest')];
    })();
    for (const c of ['* 1 FETCH (BODY[] {1', '2}\r\nhello', '\r\nworld)\r\n']) {
      sock.emit('data', Buffer.from(c));
      await turns(1);
    }
    assert.deepEqual(await got, ['* 1 FETCH (BODY[] {12}', 'hello\r\nworld', ')']);
  });

  it('a literal over the reply cap is refused before its bytes arrive', async () => {
    const { conn } = open();
    await assert.rejects(conn.readBytes(2000, new Reply(4000, 1000)), (err: unknown) => {
      return err instanceof NetError && err.code === 'ETOOLONG';
    });
  });

  it('stream() hands over bytes read ahead first, then every chunk, and the end once', async () => {
    const { conn, sock } = open();
    sock.emit('data', Buffer.from('* OK hi\r\n* 1 EXI'));
    assert.equal(await conn.readLine(4000), '* OK hi');
    const seen: string[] = [];
    const ends: string[] = [];
    conn.stream(
      (c) => seen.push(c.toString()),
      (e) => ends.push(e.code),
    );
    sock.emit('data', Buffer.from('STS\r\n'));
    sock.emit('end');
    sock.emit('close');
    assert.deepEqual(seen, ['* 1 EXI', 'STS\r\n']);
    assert.deepEqual(ends, ['ECLOSED']);
  });

  it('startTls refuses bytes buffered behind the go-ahead and closes the socket', async () => {
    const { conn, sock } = open();
    sock.emit('data', Buffer.from('220 go ahead\r\n250 injected\r\n'));
    assert.equal(await conn.readLine(4000), '220 go ahead');
    await assert.rejects(conn.startTls('STARTTLS'), (err: unknown) => {
      assert.ok(err instanceof NetError && err.code === 'EINJECTION', String(err));
      assert.equal(err.detail.bytes, 14);
      return true;
    });
    assert.equal(sock.destroyed, true);
  });
});
