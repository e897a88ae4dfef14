/**
 * Properties of the gateway's readers of backend replies before login: the line reader of
 * src/core/upstreams/connection.ts and the SMTP reply reader of smtp-client.ts on top of
 * it. A backend's bytes are fed through a stand-in socket while a reader waits, as on a
 * real connection. Whatever the backend sends, the reader returns lines within the cap or
 * fails with an NetError, and the outcome does not depend on how the bytes were cut
 * into chunks or how reading and arriving interleaved.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseEndpoint } from '../../../src/core/config/endpoint.js';
import { BackendSession } from '../../../src/core/smtp/smtp-client.js';
import { Transport } from '../../../src/core/net/transport.js';
import { StandInSocket } from '../../support/stand-in-socket.js';
import { NetError } from '../../../src/core/net/errors.js';
import { checkAsync, cut, tokenStream } from './support.js';

/** connection.ts: longest line accepted from a backend */
const MAX_LINE = 64 * 1024;
const TIMEOUTS = { connectMs: 5000, greetingMs: 5000, commandMs: 5000 };
const EP = parseEndpoint('smtp://backend.test:25');

const TOKENS = [
  '220 ready',
  '250-PIPELINING',
  '250-AUTH PLAIN LOGIN',
  '250 OK',
  '354 go',
  '535 5.7.8 no',
  '* OK [CAPABILITY IMAP4rev1] hi',
  '+OK',
  '-ERR',
  '.',
  '-',
  ' ',
  '\r\n',
  '\r\n',
  '\n',
  '\r',
  '\xc3\xa9',
  '\xff',
  'x'.repeat(30_000),
  'x'.repeat(30_000),
  'y'.repeat(MAX_LINE - 1),
];

/** No byte-by-byte cuts here: a stream can be 1 MB. */
const cutsArb = fc.array(fc.nat(), { maxLength: 12 });

type Read = (conn: Transport) => Promise<unknown>;

/** Feed the chunks one event-loop turn apart while `read` runs, then end the stream. */
async function readAll(chunks: Buffer[], read: Read): Promise<{ items: unknown[]; error: string }> {
  const socket = new StandInSocket();
  const conn = new Transport(socket as unknown as Socket, EP, 'fuzz backend', {
    timeouts: TIMEOUTS,
  });
  const items: unknown[] = [];
  const reader = (async (): Promise<unknown> => {
    try {
      for (;;) items.push(await read(conn));
    } catch (err) {
      return err;
    }
  })();
  for (const chunk of chunks) {
    socket.emit('data', chunk);
    await new Promise((r) => setImmediate(r));
  }
  socket.emit('end');
  const err = await reader;
  return { items, error: err instanceof NetError ? err.code : `not an NetError: ${err}` };
}

const readLine: Read = (conn) => conn.readLine(5000);
const readReply: Read = (conn) =>
  new BackendSession(conn, EP, 'fuzz backend', TIMEOUTS).readReply(5000, 'fuzz');

describe('backend line reader: examples the fuzzer found', () => {
  it('a line over the cap is refused even when its LF came in the same chunk', async () => {
    const r = await readAll([Buffer.from(`${'y'.repeat(MAX_LINE + 1)}\r\n250 OK\r\n`)], readLine);
    assert.deepEqual(r, { items: [], error: 'ETOOLONG' });
  });

  it('a line over the cap is refused the same way whether or not a line came before it', async () => {
    const bytes = Buffer.from(`220 ready\r\n${'y'.repeat(MAX_LINE + 3)}`);
    const expected = { items: ['220 ready'], error: 'ETOOLONG' };
    assert.deepEqual(await readAll([bytes], readLine), expected);
    assert.deepEqual(
      await readAll([bytes.subarray(0, 11), bytes.subarray(11)], readLine),
      expected,
    );
  });

  it('a line at the cap is read', async () => {
    const line = 'y'.repeat(MAX_LINE);
    const bytes = Buffer.from(`${line}\r\n`);
    const expected = { items: [line], error: 'ECLOSED' };
    assert.deepEqual(await readAll([bytes], readLine), expected);
    assert.deepEqual(await readAll(cut(bytes, [MAX_LINE + 1]), readLine), expected);
  });
});

describe('fuzz: backend reply readers', () => {
  for (const [name, read] of [
    ['line reader', readLine],
    ['SMTP reply reader', readReply],
  ] as const) {
    it(`${name}: lines within the cap, NetError only, the same for any cuts`, async () => {
      await checkAsync(
        fc.asyncProperty(tokenStream(TOKENS, 40), cutsArb, async (bytes, cuts) => {
          const whole = await readAll([bytes], read);
          assert.match(whole.error, /^E[A-Z]+$/);
          for (const item of whole.items) {
            const lines = typeof item === 'string' ? [item] : (item as { lines: string[] }).lines;
            for (const l of lines)
              assert.ok(Buffer.byteLength(l) <= MAX_LINE + 4, `line of ${l.length}`);
          }
          const parts = await readAll(cut(bytes, cuts), read);
          assert.deepEqual(parts, whole);
        }),
      );
    });
  }
});
