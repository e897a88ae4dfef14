/**
 * Properties of the POP3 pre-login line reader (src/core/pop3/parser.ts): it
 * never throws, buffers at most one line, reads the same commands however the stream is
 * cut, and a keyword is the line's first word upper-cased in ASCII, or nothing.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Pop3LineParser, type Pop3ParseEvent } from '../../../src/core/pop3/parser.js';
import { DEFAULT_LIMITS, type PreauthLimits } from '../../../src/core/limits.js';
import { check, cut, cutsArb, tokenStream } from './support.js';

const TOKENS = [
  'USER',
  'user',
  'PASS',
  'CAPA',
  'STLS',
  'AUTH',
  'PLAIN',
  'QUIT',
  ' ',
  ' ',
  'alice@example.org',
  '\r\n',
  '\r\n',
  '\n',
  '\r',
  '\0',
  '\u017f',
  '\u0131',
  '\xc5\xbf',
  '-',
  '=',
  'AGFsaWNlAHNlY3JldA==',
];

const limitsArb: fc.Arbitrary<PreauthLimits> = fc
  .record({
    maxLineBytes: fc.integer({ min: 1, max: 48 }),
    maxSaslBytes: fc.integer({ min: 1, max: 48 }),
  })
  .map((l) => ({ ...DEFAULT_LIMITS.preauth, ...l }));

function drive(
  chunks: Buffer[],
  limits: PreauthLimits,
): { events: Pop3ParseEvent[]; maxBuffered: number; buffered: number } {
  const p = new Pop3LineParser(limits);
  const events: Pop3ParseEvent[] = [];
  let maxBuffered = 0;
  for (const chunk of chunks) {
    p.feed(chunk);
    for (let ev = p.next(); ev; ev = p.next()) events.push(ev);
    maxBuffered = Math.max(maxBuffered, p.buffered);
  }
  return { events, maxBuffered, buffered: p.buffered };
}

describe('fuzz: POP3 pre-login parser', () => {
  it('never throws, keeps at most one line, reads ASCII keywords only', () => {
    check(
      fc.property(tokenStream(TOKENS, 50), cutsArb, limitsArb, (bytes, cuts, limits) => {
        const run = drive(cut(bytes, cuts), limits);
        const max = Math.max(limits.maxLineBytes, limits.maxSaslBytes);
        assert.ok(run.maxBuffered <= max + 1, `buffered ${run.maxBuffered}`);
        for (const ev of run.events) {
          if (ev.kind !== 'command') continue;
          assert.ok(ev.raw.length <= max, `line of ${ev.raw.length}`);
          if (ev.name === '') continue;
          const word = ev.raw.toString('latin1').split(' ')[0]!;
          assert.equal(
            ev.name,
            word.replace(/[a-z]/g, (c) => c.toUpperCase()),
          );
        }
      }),
    );
  });

  it('the events do not depend on how the stream is cut into chunks', () => {
    check(
      fc.property(tokenStream(TOKENS, 50), cutsArb, limitsArb, (bytes, cuts, limits) => {
        const whole = drive([bytes], limits);
        const parts = drive(cut(bytes, cuts), limits);
        assert.deepEqual(parts.events, whole.events);
        assert.equal(parts.buffered, whole.buffered);
      }),
    );
  });
});
