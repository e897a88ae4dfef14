/**
 * Properties of the SMTP DATA scanner (src/core/smtp/smuggling.ts), the
 * gateway's defence against SMTP smuggling. Whatever the client sends after 354:
 *
 *   - DATA ends at the first CRLF "." CRLF of the raw bytes (or "." CRLF right after the
 *     354), nowhere else, and the bytes after it are the client's next commands;
 *   - what the backend gets has CRLF line ends only and holds no terminator of its own;
 *   - the message size counts what the client meant: the backend's bytes without its
 *     stuffing dots, less the line ends the scanner added;
 *   - clean input (CRLF lines only) goes on unchanged;
 *   - how the stream was cut into chunks changes none of this.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DataScanner } from '../../../src/core/smtp/smuggling.js';
import { check, cut, cutsArb, tokenStream } from './support.js';

const TOKENS = [
  'a',
  'Subject: x',
  ' ',
  '.',
  '.',
  '..',
  '\r\n',
  '\r\n',
  '\r',
  '\n',
  '\r\n.\r\n',
  '.\r\n',
  '.\n',
  '\n.\n',
  '\r.\r',
  '\n.\r\n',
  '\r\n..\r\n',
  'MAIL FROM:<x@y>',
];

interface Scan {
  out: Buffer;
  ended: boolean;
  rest: Buffer | undefined;
  bytes: number;
  bare: number;
}

function scan(chunks: Buffer[]): Scan {
  const s = new DataScanner();
  const out: Buffer[] = [];
  const rest: Buffer[] = [];
  for (const chunk of chunks) {
    if (s.ended) {
      rest.push(chunk);
      continue;
    }
    const step = s.push(chunk);
    out.push(step.out);
    if (step.rest) rest.push(step.rest);
  }
  return {
    out: Buffer.concat(out),
    ended: s.ended,
    rest: s.ended ? Buffer.concat(rest) : undefined,
    bytes: s.bytes,
    bare: s.bareLineEndings,
  };
}

/** Where DATA ends in the raw bytes: just after the terminator, or -1. */
function endOf(wire: Buffer): number {
  if (wire.subarray(0, 3).equals(Buffer.from('.\r\n'))) return 3;
  const k = wire.indexOf('\r\n.\r\n');
  return k < 0 ? -1 : k + 5;
}

/** The message as the backend reads it: every line's leading dot removed (RFC 5321 4.5.2). */
function unstuff(out: Buffer): Buffer {
  const lines = out.toString('latin1').split('\r\n');
  return Buffer.from(lines.map((l) => (l.startsWith('.') ? l.slice(1) : l)).join('\r\n'), 'latin1');
}

const streamArb = tokenStream(TOKENS, 40);

describe('fuzz: SMTP DATA scanner', () => {
  it('ends at the first CRLF.CRLF; the backend gets CRLF lines and no terminator', () => {
    check(
      fc.property(streamArb, cutsArb, (wire, cuts) => {
        const r = scan(cut(wire, cuts));
        const end = endOf(wire);
        assert.equal(r.ended, end >= 0);
        if (end < 0) return;
        assert.deepEqual(r.rest, wire.subarray(end));
        const text = r.out.toString('latin1');
        assert.doesNotMatch(text, /\r(?!\n)|(?<!\r)\n/, 'bare CR or LF for the backend');
        assert.ok(text === '' || text.endsWith('\r\n'), 'the last line is not ended');
        assert.equal(`\r\n${text}`.indexOf('\r\n.\r\n'), -1, 'a terminator for the backend');
        assert.equal(unstuff(r.out).length, r.bytes + r.bare);
        const clean = wire.subarray(0, end - 3);
        if (!/\r(?!\n)|(?<!\r)\n/.test(clean.toString('latin1'))) {
          assert.deepEqual(r.out, clean);
          assert.equal(r.bare, 0);
        }
      }),
    );
  });

  it('the result does not depend on how the stream is cut into chunks', () => {
    check(
      fc.property(streamArb, cutsArb, (wire, cuts) => {
        assert.deepEqual(scan(cut(wire, cuts)), scan([wire]));
      }),
    );
  });
});
