/**
 * The DATA scanner: from the bytes a client sends after 354, what the backend gets. Only
 * CRLF.CRLF ends the data; whatever the line endings and dots, the backend gets CRLF
 * lines, the client's dot-stuffing and no second end of data, however the bytes were
 * split into chunks. A slow reference implementation (one byte at a time, lines first)
 * checks the fast one on every split of hand-written cases and on random messages.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DataScanner, relayedData } from '../../src/core/smtp/smuggling.js';

const latin1 = (s: string): Buffer => Buffer.from(s, 'latin1');

/** The relayed message (terminator added), or undefined when the input has no end of data. */
function relay(wire: string): string {
  return relayedData(latin1(wire)).data.toString('latin1');
}

interface Scanned {
  out: string;
  rest: string | undefined;
  bytes: number;
  bare: number;
}

/** Scan `wire` cut into the given chunk lengths (the rest is the last chunk). */
function scanChunks(wire: Buffer, cuts: number[]): Scanned {
  const s = new DataScanner();
  const outs: Buffer[] = [];
  let rest: string | undefined;
  let at = 0;
  const pieces: Buffer[] = [];
  for (const c of cuts) {
    pieces.push(wire.subarray(at, Math.min(wire.length, at + c)));
    at = Math.min(wire.length, at + c);
  }
  pieces.push(wire.subarray(at));
  for (let p = 0; p < pieces.length; p++) {
    const step = s.push(pieces[p]!);
    outs.push(step.out);
    if (s.ended) {
      rest = Buffer.concat([step.rest!, ...pieces.slice(p + 1)]).toString('latin1');
      break;
    }
  }
  return {
    out: Buffer.concat(outs).toString('latin1'),
    rest,
    bytes: s.bytes,
    bare: s.bareLineEndings,
  };
}

/**
 * The reference: split the input into lines with their breaks (CRLF, or a bare CR or LF),
 * end at the first "." CRLF line after a CRLF (or at the start), stuff lone-dot lines.
 */
function reference(wire: string): Scanned {
  let out = '';
  let bytes = 0;
  let bare = 0;
  let afterCrlf = true;
  let i = 0;
  const stuffed = (line: string): number => (line.startsWith('.') && line.length > 1 ? 1 : 0);
  /** An unfinished last line: "." is still undecided (held back), the rest goes on. */
  const partial = (line: string): Scanned =>
    line === '.'
      ? { out, rest: undefined, bytes, bare }
      : { out: out + line, rest: undefined, bytes: bytes + line.length - stuffed(line), bare };
  while (i < wire.length) {
    let j = i;
    while (j < wire.length && wire[j] !== '\r' && wire[j] !== '\n') j++;
    if (j >= wire.length) return partial(wire.slice(i));
    // A CR that is the input's last byte is still undecided, and held back.
    if (wire[j] === '\r' && j + 1 >= wire.length) return partial(wire.slice(i, j));
    const crlf = wire[j] === '\r' && wire[j + 1] === '\n';
    const line = wire.slice(i, j);
    const next = j + (crlf ? 2 : 1);
    if (line === '.' && crlf && afterCrlf) return { out, rest: wire.slice(next), bytes, bare };
    if (!crlf) bare++;
    out += (line === '.' ? '..' : line) + '\r\n';
    bytes += next - i - stuffed(line);
    afterCrlf = crlf;
    i = next;
  }
  return { out, rest: undefined, bytes, bare };
}

/** Every two-way split and single bytes: all the same, and the same as the reference. */
function assertAllSplits(wire: string): Scanned {
  const buf = latin1(wire);
  const want = reference(wire);
  for (let cut = 0; cut <= buf.length; cut++)
    assert.deepEqual(scanChunks(buf, [cut]), want, `split at ${cut} of ${JSON.stringify(wire)}`);
  assert.deepEqual(scanChunks(buf, Array(buf.length).fill(1)), want, 'one byte at a time');
  return want;
}

/** End-of-data sequences in what the backend gets (the relay's own included). */
function terminators(wire: string): number {
  return wire.split('\r\n.\r\n').length - 1 + (wire.startsWith('.\r\n') ? 1 : 0);
}

describe('SMTP DATA scanner (smuggling)', () => {
  it('passes a clean message on unchanged, chunks without a copy', () => {
    assert.equal(relay('Subject: x\r\n\r\nhello\r\n.\r\n'), 'Subject: x\r\n\r\nhello\r\n.\r\n');
    const s = new DataScanner();
    const mid = latin1('a line\r\nanother\r\n');
    assert.equal(s.push(mid).out, mid, 'the same Buffer goes on');
    assert.equal(s.push(latin1('x\r\n.\r\n')).out.toString('latin1'), 'x\r\n');
  });

  it('ends on CRLF.CRLF only, also right after the 354, and returns what follows', () => {
    const r = relayedData(latin1('.\r\nQUIT\r\n'));
    assert.equal(r.data.toString('latin1'), '.\r\n', 'an empty message');
    assert.equal(r.rest?.toString('latin1'), 'QUIT\r\n');
    const s = new DataScanner();
    s.push(latin1('body\r\n.\r\nMAIL FROM:<a@b>\r\n'));
    assert.ok(s.ended);
    assert.throws(() => s.push(latin1('x')), /after the end of data/);
    for (const notEnd of ['a\n.\n', 'a\r.\r', 'a\n.\r\n', 'a\r\n.\n', 'a\r.\r\n', 'a\r\n.\rb'])
      assert.equal(new DataScanner().push(latin1(notEnd)).rest, undefined, JSON.stringify(notEnd));
  });

  it('keeps the client dot-stuffing: the backend removes the same dot', () => {
    assert.equal(
      relay('..first\r\nmid\r\n..\r\n...two\r\n.\r\n'),
      '..first\r\nmid\r\n..\r\n...two\r\n.\r\n',
    );
    const s = new DataScanner();
    s.push(latin1('..a\r\n.b\r\n..\r\n.\r\n'));
    assert.equal(s.bytes, 'a\r\nb\r\n.\r\n'.length + 1, 'stuffing dots are not message bytes');
  });

  it('turns "\\n.\\n" into a stuffed line, not an end of data', () => {
    const wire = relay('Subject: a\r\n\r\nbody\n.\nMAIL FROM:<x@evil.test>\r\n.\r\n');
    assert.equal(wire, 'Subject: a\r\n\r\nbody\r\n..\r\nMAIL FROM:<x@evil.test>\r\n.\r\n');
    assert.equal(terminators(wire), 1);
  });

  it('turns "\\r.\\r" into a stuffed line, not an end of data', () => {
    const wire = relay('Subject: a\r\n\r\nbody\r.\rRCPT TO:<y@evil.test>\r\n.\r\n');
    assert.equal(wire, 'Subject: a\r\n\r\nbody\r\n..\r\nRCPT TO:<y@evil.test>\r\n.\r\n');
    assert.equal(terminators(wire), 1);
  });

  it('handles "\\r\\n.\\n", "\\n.\\r\\n" and CR CR LF', () => {
    assert.equal(relay('a\r\n.\nb\n.\r\nc\r\r\n.\r\n'), 'a\r\n..\r\nb\r\n..\r\nc\r\n\r\n.\r\n');
  });

  it('counts what it normalised', () => {
    const s = new DataScanner();
    s.push(latin1('a\nb\rc\r\n.\r\n'));
    assert.equal(s.bareLineEndings, 2);
    assert.equal(
      s.bytes,
      'a\nb\rc\r\n'.length,
      'message bytes are counted as the client sent them',
    );
  });

  it('gives the same result as the reference on every split of the hard cases', () => {
    const cases = [
      'S: x\r\n\r\n.a\n.\r.\r\n..\rz\r\nend\r\n.\r\nNEXT',
      '.\r\n',
      '..\r\n.\r\n',
      '\r\n.\r\n',
      '\n.\r\n.\r\n',
      '\r.\r\n\r\n.\r\nX',
      'a\r\r\n.\r\r\n.\r\n',
      '.\n.\r.\r\n.\r\n',
      'line\r\n.\rx\r\n.\r\n',
      'x'.repeat(20) + '\r\n' + '.'.repeat(5) + '\n\r\n.\r\n',
    ];
    for (const c of cases) {
      const r = assertAllSplits(c);
      assert.notEqual(r.rest, undefined, `${JSON.stringify(c)} has an end`);
      assert.equal(terminators(`${r.out}.\r\n`), 1, `one end of data for ${JSON.stringify(c)}`);
      assert.ok(!/\r(?!\n)|(?<!\r)\n/.test(r.out), 'only CRLF line endings');
    }
  });

  it('agrees with the reference on random messages cut at random places', () => {
    let seed = 42;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const alphabet = ['\r', '\n', '.', 'a', '\r\n', '\r\n.', '.\r\n', 'b'];
    for (let round = 0; round < 3000; round++) {
      let wire = '';
      const parts = 1 + rand(24);
      for (let p = 0; p < parts; p++) wire += alphabet[rand(alphabet.length)];
      const buf = latin1(wire);
      const cuts: number[] = [];
      for (let left = buf.length; left > 0;) {
        const c = 1 + rand(4);
        cuts.push(c);
        left -= c;
      }
      const want = reference(wire);
      assert.deepEqual(scanChunks(buf, cuts), want, JSON.stringify(wire));
      if (want.rest !== undefined) assert.equal(terminators(`${want.out}.\r\n`), 1);
    }
  });
});
