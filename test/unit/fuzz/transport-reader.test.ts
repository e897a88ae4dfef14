/**
 * Properties of the transport's reader (src/core/net/transport.ts, line-buffer.ts) and of
 * the SMTP reply reader of smtp-client.ts on top of it. A server's bytes are fed through a
 * stand-in socket while a reader waits, as on a real connection. Whatever the server
 * sends, the reader returns lines within the cap and literals of exactly their size, or
 * fails with a NetError; the outcome is the one a plain reference reader computes on the
 * whole stream, and does not depend on how the bytes were cut into chunks or how reading
 * and arriving interleaved.
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

/** transport.ts: longest line accepted by default */
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
  '* 1 FETCH (BODY[] {5}\r\n',
  '{3}\r\n',
  '{70000}\r\n',
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

/** IMAP-style reading: a line ending in {N} is followed by N raw bytes (RFC 3501 4.3). */
const LITERAL = /\{(\d{1,7})\}$/;
const readImap: Read = async (conn) => {
  const line = await conn.readLine(5000, 'a response', 'latin1');
  const m = LITERAL.exec(line);
  if (!m) return line;
  return [line, (await conn.readBytes(Number(m[1]), 5000)).toString('latin1')];
};

/** The same reading, done plainly on the whole stream at once. */
function reference(bytes: Buffer): { items: unknown[]; error: string } {
  const items: unknown[] = [];
  let pos = 0;
  for (;;) {
    const lf = bytes.indexOf(0x0a, pos);
    if (lf < 0) {
      const rest = bytes.length - pos;
      const over = rest > MAX_LINE + 1 || (rest === MAX_LINE + 1 && bytes[pos + MAX_LINE] !== 0x0d);
      return { items, error: over ? 'ETOOLONG' : 'ECLOSED' };
    }
    const end = lf > pos && bytes[lf - 1] === 0x0d ? lf - 1 : lf;
    if (end - pos > MAX_LINE) return { items, error: 'ETOOLONG' };
    const line = bytes.toString('latin1', pos, end);
    pos = lf + 1;
    const m = LITERAL.exec(line);
    if (!m) {
      items.push(line);
      continue;
    }
    const n = Number(m[1]);
    if (bytes.length - pos < n) return { items, error: 'ECLOSED' };
    items.push([line, bytes.toString('latin1', pos, pos + n)]);
    pos += n;
  }
}

describe('fuzz: transport line and literal reader', () => {
  it('lines and literals as the reference reads them, for any cuts', async () => {
    await checkAsync(
      fc.asyncProperty(tokenStream(TOKENS, 40), cutsArb, async (bytes, cuts) => {
        const expected = reference(bytes);
        assert.deepEqual(await readAll([bytes], readImap), expected);
        assert.deepEqual(await readAll(cut(bytes, cuts), readImap), expected);
      }),
    );
  });

  it('CRLF-only lines (POP3 bodies) keep a bare LF inside the line, for any cuts', async () => {
    const readCrlf: Read = async (conn) =>
      (await conn.readRaw(5000, 'a body line', true)).toString('latin1');
    await checkAsync(
      fc.asyncProperty(tokenStream(TOKENS, 30), cutsArb, async (bytes, cuts) => {
        const whole = await readAll([bytes], readCrlf);
        for (const item of whole.items) {
          assert.ok(!String(item).includes('\r\n'), 'a line holds a CRLF');
          assert.ok(String(item).length <= MAX_LINE + 1, 'a line over the cap');
        }
        const text = bytes.toString('latin1');
        const joined = whole.items.map((l) => `${String(l)}\r\n`).join('');
        assert.ok(text.startsWith(joined), 'lines are not the stream, in order');
        assert.deepEqual(await readAll(cut(bytes, cuts), readCrlf), whole);
      }),
    );
  });
});
