/**
 * The PROXY protocol header parser against hostile bytes: valid v1/v2 headers, their
 * fragments, near misses and noise, cut at random points. It never throws, never asks
 * for more bytes past its cap (so a reader holds at most the cap plus one chunk), and
 * decides the same whatever the cuts. The socket reader hands on exactly the bytes after
 * the header.
 */
import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import {
  parseProxyHeader,
  readProxyHeader,
  V1_MAX_BYTES,
  type ProxyParse,
} from '../../../src/core/listen/proxy-protocol.js';
import { v2 } from '../../support/proxy-header.js';
import { check, checkAsync, cut, cutsArb, tokenStream } from './support.js';

const CAP = 256;

const TOKENS = [
  'PROXY ',
  'PROXY TCP4 ',
  'PROXY TCP6 ',
  'PROXY UNKNOWN',
  'TCP4',
  '192.0.2.7 ',
  '198.51.100.1',
  '2001:db8::7 ',
  '::1',
  ' 40000',
  ' 143',
  ' 65536',
  ' 0',
  '\r\n',
  '\r',
  '\n',
  ' ',
  'A1 LOGIN a b\r\n',
  'EHLO x\r\n',
  v2().toString('latin1'),
  v2({ cmd: 0 }).toString('latin1'),
  v2({ fam: 0x21, client: ['2001:db8::7', 1], server: ['::1', 2] }).toString('latin1'),
  v2({ tlv: Buffer.alloc(300) }).toString('latin1'),
  v2().subarray(0, 12).toString('latin1'),
  v2().subarray(0, 16).toString('latin1'),
  '\x21\x11\x00\x0c',
  '\x21\x11\xff\xff',
  '\x20\x00\x00\x00',
];

/** What a reader decides: the first non-"more" parse as the chunks arrive, and what follows it. */
function feed(chunks: Buffer[]): { result: ProxyParse; rest: Buffer; held: number } {
  let buf = Buffer.alloc(0);
  let held = 0;
  for (let i = 0; i < chunks.length; i++) {
    buf = Buffer.concat([buf, chunks[i]!]);
    held = Math.max(held, buf.length);
    const r = parseProxyHeader(buf, CAP);
    if (r.kind === 'more') continue;
    const after = Buffer.concat(chunks.slice(i + 1));
    const rest = r.kind === 'done' ? Buffer.concat([buf.subarray(r.header.length), after]) : after;
    return { result: r, rest, held };
  }
  return { result: { kind: 'more' }, rest: Buffer.alloc(0), held };
}

const streams = fc.oneof(
  tokenStream(TOKENS, 12),
  // a valid header, then noise
  fc
    .tuple(
      fc.constantFrom(
        Buffer.from('PROXY TCP4 192.0.2.7 198.51.100.1 40000 143\r\n'),
        Buffer.from('PROXY TCP6 2001:db8::7 ::1 1 993\r\n'),
        Buffer.from('PROXY UNKNOWN\r\n'),
        v2(),
        v2({ cmd: 0 }),
        v2({ tlv: Buffer.alloc(100, 7) }),
      ),
      fc.uint8Array({ maxLength: 64 }),
    )
    .map(([h, tail]) => Buffer.concat([h, Buffer.from(tail)])),
  fc.uint8Array({ maxLength: 400 }).map((a) => Buffer.from(a)),
);

describe('fuzz: PROXY protocol header parser', () => {
  it('never throws, holds at most the cap, and decides the same whatever the cuts', () => {
    check(
      fc.property(streams, cutsArb, (bytes, cuts) => {
        const whole = feed(bytes.length ? [bytes] : []);
        const pieces = feed(cut(bytes, cuts));
        assert.equal(pieces.result.kind, whole.result.kind);
        assert.deepEqual(
          pieces.result,
          whole.result.kind === 'invalid' ? pieces.result : whole.result,
        );
        if (whole.result.kind === 'done') assert.ok(pieces.rest.equals(whole.rest));
        // "more" is only said below the cap: the reader's buffer is bounded
        for (let n = 0; n <= bytes.length; n++) {
          if (parseProxyHeader(bytes.subarray(0, n), CAP).kind === 'more')
            assert.ok(n < Math.max(CAP, V1_MAX_BYTES), `more at ${n} bytes`);
        }
      }),
    );
  });
});

describe('fuzz: reading the header from a socket', () => {
  let server: Server;
  let port = 0;
  const waiting: Array<(s: Socket) => void> = [];
  before(async () => {
    server = createServer((s) => waiting.shift()?.(s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  it('hands on exactly the bytes after a header, however they arrive', async () => {
    await checkAsync(
      fc.asyncProperty(streams, cutsArb, async (bytes, cuts) => {
        const expected = feed(bytes.length ? [bytes] : []);
        const accepted = new Promise<Socket>((r) => waiting.push(r));
        const c = connect(port, '127.0.0.1');
        c.on('error', () => undefined);
        const s = await accepted;
        s.on('error', () => undefined);
        const reading = readProxyHeader(s, { timeoutMs: 200, maxBytes: CAP });
        for (const piece of cut(bytes, cuts)) {
          c.write(piece);
          await new Promise((r) => setImmediate(r));
        }
        const r = await reading;
        try {
          if (expected.result.kind !== 'done') {
            assert.equal(r.ok, false);
            return;
          }
          assert.ok(r.ok);
          assert.deepEqual(r.header, expected.result.header);
          c.end();
          const rest: Buffer[] = [];
          s.on('data', (d: Buffer) => rest.push(d));
          await new Promise((res) => s.once('end', res));
          assert.ok(Buffer.concat(rest).equals(expected.rest));
        } finally {
          c.destroy();
          s.destroy();
        }
      }),
    );
  });
});
