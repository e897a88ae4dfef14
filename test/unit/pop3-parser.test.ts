import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Pop3LineParser, type Pop3ParseEvent } from '../../src/core/pop3/parser.js';
import { decodeSasl, parsePlain } from '../../src/core/sessions/sasl.js';
import { DEFAULT_LIMITS } from '../../src/core/limits.js';

const L = DEFAULT_LIMITS.preauth;

function parse(text: string): Pop3ParseEvent[] {
  const p = new Pop3LineParser(L);
  p.feed(Buffer.from(text, 'latin1'));
  const out: Pop3ParseEvent[] = [];
  for (let ev = p.next(); ev; ev = p.next()) out.push(ev);
  return out;
}

describe('POP3 pre-auth parser', () => {
  it('splits keyword and argument; the argument keeps its spaces (PASS)', () => {
    const [a, b, c] = parse('user alice@example.org\r\nPASS my secret pass\r\nCAPA\n');
    assert.deepEqual(
      [a, b, c].map((e) => e?.kind === 'command' && [e.name, e.arg]),
      [
        ['USER', 'alice@example.org'],
        ['PASS', 'my secret pass'],
        ['CAPA', ''],
      ],
    );
  });

  it('keeps bytes after the last line for the backend', () => {
    const p = new Pop3LineParser(L);
    p.feed(Buffer.from('PASS x\r\nSTAT\r\nRETR'));
    p.next();
    assert.equal(p.takeRemaining().toString(), 'STAT\r\nRETR');
  });

  it('an oversized line is fatal, with or without a line end', () => {
    assert.deepEqual(parse('USER ' + 'x'.repeat(L.maxLineBytes + 1)), [
      { kind: 'error', text: 'Line too long.', fatal: true },
    ]);
    const evs = parse('USER ' + 'x'.repeat(L.maxLineBytes + 1) + '\r\nQUIT\r\n');
    assert.equal(evs.length, 1);
  });

  it('the line cap is the same whether the line end came in the same chunk or not', () => {
    const max = Math.max(L.maxLineBytes, L.maxSaslBytes);
    const atCap = Buffer.from(`PASS ${'x'.repeat(max - 5)}\r\n`);
    for (const at of [max, max + 1, atCap.length]) {
      const p = new Pop3LineParser(L);
      p.feed(atCap.subarray(0, at));
      const first = p.next();
      p.feed(atCap.subarray(at));
      const ev = first ?? p.next();
      assert.equal(ev?.kind === 'command' && ev.name, 'PASS', `cut at ${at}`);
    }
    // one byte over the cap is fatal, also when the LF is in the same chunk
    assert.deepEqual(parse(`PASS ${'x'.repeat(max - 4)}\n`), [
      { kind: 'error', text: 'Line too long.', fatal: true },
    ]);
  });

  it('keywords are ASCII: "\u017FTLS" is no STLS', () => {
    const [ev] = parse(Buffer.from('\u017FTLS\r\n', 'utf8').toString('latin1'));
    assert.equal(ev?.kind === 'command' && ev.name, '');
  });

  it('NUL is an error; odd keywords are flagged', () => {
    assert.deepEqual(parse('USER a\0b\r\n'), [
      { kind: 'error', text: 'NUL characters are not allowed.', fatal: false },
    ]);
    const [bad] = parse('\x01\x02 x\r\n');
    assert.equal(bad?.kind === 'command' && bad.name, '');
  });

  it('10,000 garbage lines are all consumed, memory stays flat', () => {
    const p = new Pop3LineParser(L);
    let n = 0;
    for (let i = 0; i < 10_000; i++) {
      p.feed(Buffer.from(`\xff\xfe garbage ${i}\r\n`, 'latin1'));
      for (let ev = p.next(); ev; ev = p.next()) n++;
    }
    assert.equal(n, 10_000);
    assert.equal(p.buffered, 0);
  });
});

describe('SASL helpers', () => {
  it('strict base64', () => {
    assert.deepEqual(decodeSasl('='), Buffer.alloc(0));
    assert.equal(decodeSasl('YWJj')?.toString(), 'abc');
    for (const bad of ['', 'YWJ', 'YW Jj', 'YWJj\n', '@@@@', 'YQ', 'YQ=', 'Y==='])
      assert.equal(decodeSasl(bad), undefined, JSON.stringify(bad));
  });
  it('PLAIN: authzid must be empty or the user', () => {
    assert.deepEqual(parsePlain(Buffer.from('\0u\0p w')), { ok: true, user: 'u', password: 'p w' });
    assert.deepEqual(parsePlain(Buffer.from('u\0u\0p')), { ok: true, user: 'u', password: 'p' });
    assert.deepEqual(parsePlain(Buffer.from('admin\0u\0p')), { ok: false, why: 'authzid' });
    for (const bad of ['u\0p', '\0\0p', 'a\0b\0c\0d', 'nonul'])
      assert.deepEqual(parsePlain(Buffer.from(bad)), { ok: false, why: 'syntax' });
  });
});
