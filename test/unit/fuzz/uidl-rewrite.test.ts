/**
 * Properties of the gateway's UIDL rewriting filter (src/core/transfer/uidl/rewrite.ts),
 * a reader of the destination's bytes: over a POP3 session of pipelined commands and their
 * replies (message bodies holding lines that look like UIDL lines, dot-stuffed lines,
 * -ERR replies), the client sees exactly the replies with the UIDLs of the map replaced
 * in UIDL replies and nowhere else, however both streams are cut; with an empty map, and
 * on any hostile stream, it never throws and is a byte copy (once the last line ended) or
 * cut-invariant; it holds at most one line.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { UidlRewriter } from '../../../src/core/transfer/uidl/rewrite.js';
import { check, cut, cutsArb, tokenStream } from './support.js';

const MAP = new Map([
  ['d1', 's1'],
  ['d2', 'source-two'],
  ['d3', 's3'],
]);
const UIDLS = ['d1', 'd2', 'd3', 'd4', 'x'];

interface Exchange {
  command: string;
  /** what the backend sends */
  reply: string;
  /** what the client must see */
  seen: string;
}

const uidlArb = fc.constantFrom(...UIDLS);
const shown = (u: string): string => MAP.get(u) ?? u;
const okOrErr = fc.boolean();
const bodyLine = fc.constantFrom(
  '1 d1',
  '+OK 1 d2',
  '..',
  '..\r',
  '.. d1',
  '',
  'Subject: d3',
  'x'.repeat(200),
);

const exchangeArb: fc.Arbitrary<Exchange> = fc.oneof(
  fc.tuple(okOrErr, fc.array(uidlArb, { maxLength: 6 })).map(([ok, us]) => {
    if (!ok) return same('UIDL', '-ERR [SYS/TEMP] busy\r\n');
    const lines = us.map((u, i) => `${i + 1} ${u}\r\n`);
    const out = us.map((u, i) => `${i + 1} ${shown(u)}\r\n`);
    return {
      command: 'UIDL',
      reply: `+OK\r\n${lines.join('')}.\r\n`,
      seen: `+OK\r\n${out.join('')}.\r\n`,
    };
  }),
  fc
    .tuple(okOrErr, fc.nat(9), uidlArb)
    .map(([ok, n, u]) =>
      ok
        ? { command: `uidl ${n}`, reply: `+OK ${n} ${u}\r\n`, seen: `+OK ${n} ${shown(u)}\r\n` }
        : same(`UIDL ${n}`, '-ERR No such message\r\n'),
    ),
  fc
    .tuple(okOrErr, fc.constantFrom('RETR 1', 'TOP 2 0', 'LIST', 'CAPA'), fc.array(bodyLine))
    .map(([ok, cmd, lines]) =>
      same(
        cmd,
        ok
          ? `+OK follows\r\n${lines.map((l) => `${l.startsWith('.') ? '.' : ''}${l}\r\n`).join('')}.\r\n`
          : '-ERR no\r\n',
      ),
    ),
  fc
    .tuple(okOrErr, fc.constantFrom('STAT', 'NOOP', 'DELE 1', 'LIST 1', 'RSET', 'XYZZY', ''))
    .map(([ok, cmd]) => same(cmd, ok ? '+OK 1 d1\r\n' : '-ERR 1 d1\r\n')),
);

function same(command: string, reply: string): Exchange {
  return { command, reply, seen: reply };
}

function run(f: UidlRewriter, client: Buffer[], backend: Buffer[]): Buffer {
  for (const c of client) f.fromClient(c);
  return Buffer.concat(backend.map((b) => f.fromBackend(b)));
}

const cmdEnd = fc.constantFrom('\r\n', '\n');

describe('UIDL rewriting filter', () => {
  it('rewrites UIDL replies exactly, and nothing else, however the streams are cut', () => {
    check(
      fc.property(
        fc.array(fc.tuple(exchangeArb, cmdEnd), { maxLength: 12 }),
        cutsArb,
        cutsArb,
        (session, clientCuts, backendCuts) => {
          const client = Buffer.from(session.map(([e, eol]) => e.command + eol).join(''));
          const backend = Buffer.from(session.map(([e]) => e.reply).join(''), 'latin1');
          const f = new UidlRewriter(MAP);
          const out = run(f, cut(client, clientCuts), cut(backend, backendCuts));
          assert.equal(out.toString('latin1'), session.map(([e]) => e.seen).join(''));
          assert.equal(f.off, false);
        },
      ),
    );
  });

  it('a reply with nothing to rewrite is passed as the same Buffer (a byte copy)', () => {
    const f = new UidlRewriter(MAP);
    f.fromClient(Buffer.from('RETR 1\r\nUIDL\r\n'));
    const body = Buffer.from('+OK\r\n1 d1\r\n.\r\n');
    assert.equal(f.fromBackend(body), body);
    assert.equal(
      f.fromBackend(Buffer.from('+OK\r\n1 d1\r\n.\r\n')).toString(),
      '+OK\r\n1 s1\r\n.\r\n',
    );
    assert.equal(f.rewritten, 1);
  });

  it('an empty map is a byte copy of any stream', () => {
    check(
      fc.property(
        tokenStream(['UIDL', 'UIDL 1', 'RETR 1', '\r\n', '\n', ' ']),
        tokenStream(['+OK', '-ERR', ' 1 d1', '\r\n', '.\r\n', '.', '\n']),
        cutsArb,
        cutsArb,
        (client, backend, cc, bc) => {
          // a line held for rewriting is out at its LF: end the stream with one
          const all = Buffer.concat([backend, Buffer.from('\n')]);
          const out = run(new UidlRewriter(new Map()), cut(client, cc), cut(all, bc));
          assert.deepEqual(out, all);
        },
      ),
    );
  });

  it('hostile streams: never throws, the same output however they are cut', () => {
    const limits = { maxLine: 16, maxPending: 5 };
    check(
      fc.property(
        tokenStream(['UIDL', 'UIDL 1', 'RETR 1', 'LIST', '\r\n', '\n', ' ']),
        tokenStream(['+OK', '-ERR', ' 1 d1', '1 d2', '\r\n', '.\r\n', '.', '\n', '..']),
        cutsArb,
        cutsArb,
        (client, backend, cc, bc) => {
          const whole = run(new UidlRewriter(MAP, limits), [client], [backend]);
          const out = run(new UidlRewriter(MAP, limits), cut(client, cc), cut(backend, bc));
          assert.deepEqual(out, whole);
        },
      ),
    );
  });

  it('memory is bounded: an overlong UIDL line is given back as it came, rewriting stops', () => {
    const f = new UidlRewriter(MAP, { maxLine: 100, maxPending: 10 });
    f.fromClient(Buffer.from('UIDL\r\n'));
    const long = Buffer.alloc(10_000, 0x61);
    const parts = [f.fromBackend(Buffer.from('+OK\r\n1 d1\r\n2 ')), f.fromBackend(long)];
    parts.push(f.fromBackend(Buffer.from('\r\n3 d2\r\n.\r\n')));
    assert.equal(f.off, true);
    assert.equal(
      Buffer.concat(parts).toString('latin1'),
      `+OK\r\n1 s1\r\n2 ${long.toString('latin1')}\r\n3 d2\r\n.\r\n`,
    );
  });

  it('a 100k-line UIDL reply streams: each chunk out as it came in', () => {
    const f = new UidlRewriter(MAP);
    f.fromClient(Buffer.from('UIDL\r\n'));
    let outBytes = 0;
    let inBytes = 0;
    const first = f.fromBackend(Buffer.from('+OK\r\n'));
    outBytes += first.length;
    for (let i = 1; i <= 100_000; i += 1000) {
      const lines = Array.from({ length: 1000 }, (_, k) => `${i + k} d${(i + k) % 5}\r\n`).join('');
      const chunk = Buffer.from(lines);
      inBytes += chunk.length;
      const out = f.fromBackend(chunk);
      outBytes += out.length;
      // whole lines in, whole lines out: nothing held between chunks
      assert.equal(out.subarray(-2).toString(), '\r\n');
    }
    assert.ok(outBytes > inBytes);
    assert.equal(f.fromBackend(Buffer.from('.\r\n')).toString(), '.\r\n');
  });
});
