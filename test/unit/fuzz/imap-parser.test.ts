/**
 * Properties of the IMAP pre-login command reader (src/core/imap/parser.ts)
 * under hostile bytes: it never throws, what it buffers stays within the caps, it asks for
 * at most maxLiteralsPerCommand literals per command, and the events do not depend on how
 * the byte stream was cut into chunks. Plus a round trip of LOGIN arguments through every
 * string form (atom, quoted, {n}, {n+}).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  ImapCommandParser,
  type ImapArg,
  type ImapParseEvent,
} from '../../../src/core/imap/parser.js';
import { DEFAULT_LIMITS, type PreauthLimits } from '../../../src/core/limits.js';
import { check, cut, cutsArb, tokenStream } from './support.js';

const TOKENS = [
  'a',
  'A1',
  ' ',
  ' ',
  '\r\n',
  '\r\n',
  '\n',
  '\r',
  'LOGIN',
  'login',
  'AUTHENTICATE',
  'PLAIN',
  'ID',
  'NOOP',
  'STARTTLS',
  'NIL',
  '"',
  '\\',
  '(',
  ')',
  '{',
  '}',
  '+',
  '*',
  '%',
  '\0',
  '\x7f',
  '\xff',
  '{0}\r\n',
  '{0+}\r\n',
  '{1}\r\n',
  '{3+}\r\n',
  '{5}\r\n',
  '{99999999999}\r\n',
  '{4294967296+}\r\n',
  '"a\\"b"',
  '((((("x")))))',
  'AGFsaWNlAHNlY3JldA==',
];

const ERROR_TEXTS = new Set([
  'Line too long.',
  'Literal too big.',
  'Too many literals.',
  'Invalid tag.',
  'NUL characters are not allowed.',
  'Missing command.',
  'Expected a space between arguments.',
  'Missing argument.',
  'Unexpected literal.',
  'Invalid characters in argument.',
  'Unterminated quoted string.',
  'Invalid escape in quoted string.',
  'Lists nested too deeply.',
  'Unterminated list.',
  'Expected a space in a list.',
  'List too long.',
]);

/** small caps, so that the generated input reaches them */
const limitsArb: fc.Arbitrary<PreauthLimits> = fc
  .record({
    maxLineBytes: fc.integer({ min: 4, max: 64 }),
    maxLiteralBytes: fc.integer({ min: 0, max: 32 }),
    maxSaslBytes: fc.integer({ min: 4, max: 64 }),
    maxTagBytes: fc.integer({ min: 1, max: 8 }),
    maxLiteralsPerCommand: fc.integer({ min: 0, max: 4 }),
  })
  .map((l) => ({ ...DEFAULT_LIMITS.preauth, ...l }));

interface Run {
  events: ImapParseEvent[];
  maxBuffered: number;
  buffered: number;
}

/** Feed the chunks as the session does: drain after each; AUTHENTICATE asks for one raw line. */
function drive(chunks: Buffer[], limits: PreauthLimits): Run {
  const p = new ImapCommandParser(limits);
  const events: ImapParseEvent[] = [];
  let maxBuffered = 0;
  for (const chunk of chunks) {
    p.feed(chunk);
    for (let ev = p.next(); ev; ev = p.next()) {
      events.push(ev);
      if (ev.kind === 'command' && ev.command.name === 'AUTHENTICATE') p.expectLine();
    }
    maxBuffered = Math.max(maxBuffered, p.buffered);
  }
  return { events, maxBuffered, buffered: p.buffered };
}

describe('fuzz: IMAP pre-login parser', () => {
  it('never throws, buffers within the caps, asks for a bounded number of literals', () => {
    check(
      fc.property(tokenStream(TOKENS, 60), cutsArb, limitsArb, (bytes, cuts, limits) => {
        const run = drive(cut(bytes, cuts), limits);
        const line = Math.max(limits.maxLineBytes, limits.maxSaslBytes) + 1;
        assert.ok(
          run.maxBuffered <= limits.maxLineBytes + limits.maxLiteralBytes + line,
          `buffered ${run.maxBuffered}`,
        );
        let continues = 0;
        for (const ev of run.events) {
          if (ev.kind === 'continue') {
            assert.ok(++continues <= limits.maxLiteralsPerCommand, 'too many "+"');
            continue;
          }
          continues = 0;
          if (ev.kind === 'error') assert.ok(ERROR_TEXTS.has(ev.text), ev.text);
          if (ev.kind === 'command') assert.doesNotMatch(ev.command.name, /[a-z]/);
        }
      }),
    );
  });

  it('the events do not depend on how the stream is cut into chunks', () => {
    check(
      fc.property(tokenStream(TOKENS, 60), cutsArb, limitsArb, (bytes, cuts, limits) => {
        const whole = drive([bytes], limits);
        const parts = drive(cut(bytes, cuts), limits);
        assert.deepEqual(parts.events, whole.events);
        assert.equal(parts.buffered, whole.buffered);
      }),
    );
  });

  it('LOGIN arguments survive every string form', () => {
    const noNul = fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a.filter((b) => b)));
    const form = fc.constantFrom('atom', 'quoted', 'sync', 'plus');
    check(
      fc.property(noNul, noNul, form, form, cutsArb, (user, pw, uf, pf, cuts) => {
        const enc = (b: Buffer, f: string): { text: Buffer; sync: number } => {
          if (
            f === 'atom' &&
            /^[A-Za-z0-9@._-]+$/.test(b.toString('latin1')) &&
            !/^nil$/i.test(b.toString('latin1'))
          )
            return { text: b, sync: 0 };
          if ((f === 'quoted' || f === 'atom') && !b.includes(0x0d) && !b.includes(0x0a)) {
            const q = b.toString('latin1').replace(/["\\]/g, (c) => `\\${c}`);
            return { text: Buffer.from(`"${q}"`, 'latin1'), sync: 0 };
          }
          const head = Buffer.from(`{${b.length}${f === 'plus' ? '+' : ''}}\r\n`);
          return { text: Buffer.concat([head, b]), sync: f === 'plus' ? 0 : 1 };
        };
        const u = enc(user, uf);
        const p = enc(pw, pf);
        const wire = Buffer.concat([
          Buffer.from('t1 lOgIn '),
          u.text,
          Buffer.from(' '),
          p.text,
          Buffer.from('\r\n'),
        ]);
        const { events } = drive(cut(wire, cuts), DEFAULT_LIMITS.preauth);
        assert.equal(events.filter((e) => e.kind === 'continue').length, u.sync + p.sync);
        const cmds = events.filter((e) => e.kind !== 'continue');
        assert.equal(cmds.length, 1, JSON.stringify(cmds));
        const c = cmds[0]!;
        assert.equal(c.kind, 'command', JSON.stringify(c));
        if (c.kind !== 'command') return;
        assert.equal(c.command.name, 'LOGIN');
        const bytesOf = (a: ImapArg | undefined): Buffer | undefined =>
          a?.kind === 'string' ? a.value : a?.kind === 'atom' ? Buffer.from(a.value) : undefined;
        assert.deepEqual(bytesOf(c.command.args[0]), user);
        assert.deepEqual(bytesOf(c.command.args[1]), pw);
      }),
    );
  });
});
