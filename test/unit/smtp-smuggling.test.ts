/**
 * The DATA encoder: whatever line endings and leading dots a message has, the backend
 * gets CRLF lines, dot-stuffed, and exactly one CRLF.CRLF at the end, however the bytes
 * were split into chunks.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BareLineEndingError,
  DataEncoder,
  encodeData,
} from '../../src/core/frontends/smtp/smuggling.js';

const enc = (s: string, policy: 'normalize' | 'reject' = 'normalize'): string =>
  encodeData(Buffer.from(s, 'latin1'), policy).toString('latin1');

/** Encode in every possible two-way split and in single bytes: same output each time. */
function encodeSplits(s: string): string[] {
  const buf = Buffer.from(s, 'latin1');
  const outs: string[] = [];
  for (let cut = 0; cut <= buf.length; cut++) {
    const e = new DataEncoder();
    outs.push(
      Buffer.concat([e.push(buf.subarray(0, cut)), e.push(buf.subarray(cut)), e.end()]).toString(
        'latin1',
      ),
    );
  }
  const e = new DataEncoder();
  const parts = [...buf].map((b) => e.push(Buffer.from([b])));
  outs.push(Buffer.concat([...parts, e.end()]).toString('latin1'));
  return outs;
}

/** The end-of-data sequence appears exactly once, at the very end. */
function terminators(wire: string): number {
  return wire.split('\r\n.\r\n').length - 1 + (wire.startsWith('.\r\n') ? 1 : 0);
}

describe('SMTP DATA encoder (smuggling)', () => {
  it('passes a clean message through and adds the terminator', () => {
    assert.equal(enc('Subject: x\r\n\r\nhello\r\n'), 'Subject: x\r\n\r\nhello\r\n.\r\n');
  });

  it('stuffs a leading dot on every line, the first included (RFC 5321 4.5.2)', () => {
    assert.equal(enc('.first\r\nmid\r\n.\r\n..two\r\n'), '..first\r\nmid\r\n..\r\n...two\r\n.\r\n');
  });

  it('an empty message is just the terminator', () => {
    assert.equal(enc(''), '.\r\n');
  });

  it('ends an unterminated last line with CRLF', () => {
    assert.equal(enc('no newline'), 'no newline\r\n.\r\n');
  });

  it('turns "\\n.\\n" into a stuffed line, not an end of data', () => {
    const wire = enc('Subject: a\r\n\r\nbody\n.\nMAIL FROM:<x@evil.test>\r\n');
    assert.equal(wire, 'Subject: a\r\n\r\nbody\r\n..\r\nMAIL FROM:<x@evil.test>\r\n.\r\n');
    assert.equal(terminators(wire), 1);
  });

  it('turns "\\r.\\r" into a stuffed line, not an end of data', () => {
    const wire = enc('Subject: a\r\n\r\nbody\r.\rRCPT TO:<y@evil.test>\r\n');
    assert.equal(wire, 'Subject: a\r\n\r\nbody\r\n..\r\nRCPT TO:<y@evil.test>\r\n.\r\n');
    assert.equal(terminators(wire), 1);
  });

  it('handles "\\r\\n.\\n", "\\n.\\r\\n" and CR CR LF', () => {
    assert.equal(enc('a\r\n.\nb\n.\r\nc\r\r\n'), 'a\r\n..\r\nb\r\n..\r\nc\r\n\r\n.\r\n');
  });

  it('gives the same bytes whatever the chunking', () => {
    const msg = 'S: x\r\n\r\n.a\n.\r.\r\n..\rz\r\nend\r';
    const outs = encodeSplits(msg);
    for (const o of outs) assert.equal(o, outs[0]);
    assert.equal(terminators(outs[0]!), 1);
    assert.ok(!/\r(?!\n)|(?<!\r)\n/.test(outs[0]!), 'only CRLF line endings');
  });

  it('gives the same bytes whether a chunk takes the fast path or not', () => {
    const msg = 'Subject: y\r\n\r\nabc\r\n.dot\r\nxyz\r\n..two\r\nlast\r\n';
    const expected = 'Subject: y\r\n\r\nabc\r\n..dot\r\nxyz\r\n...two\r\nlast\r\n.\r\n';
    for (const o of encodeSplits(msg)) assert.equal(o, expected);
    const clean = Buffer.from('a\r\nb\r\n');
    assert.equal(new DataEncoder().push(clean), clean, 'a clean chunk is passed on without a copy');
  });

  it('counts what it normalised', () => {
    const e = new DataEncoder();
    e.push(Buffer.from('a\nb\rc\r\n'));
    e.end();
    assert.equal(e.bareLineEndings, 2);
  });

  it('"reject" throws on the first bare LF or CR, also across chunks', () => {
    assert.throws(() => enc('ok\r\nbad\nmore\r\n', 'reject'), BareLineEndingError);
    assert.throws(() => enc('ok\r\nbad\rmore\r\n', 'reject'), BareLineEndingError);
    const e = new DataEncoder('reject');
    e.push(Buffer.from('line\r'));
    assert.throws(() => e.push(Buffer.from('x\r\n')), BareLineEndingError);
    assert.equal(enc('fine\r\n.dot\r\n', 'reject'), 'fine\r\n..dot\r\n.\r\n');
  });
});
