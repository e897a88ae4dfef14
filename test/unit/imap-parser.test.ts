import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_LIMITS } from '../../src/core/limits.js';
import { argText, ImapCommandParser, type ImapParseEvent } from '../../src/core/imap/parser.js';

const L = DEFAULT_LIMITS.preauth;

function all(p: ImapCommandParser): ImapParseEvent[] {
  const out: ImapParseEvent[] = [];
  for (let ev = p.next(); ev; ev = p.next()) out.push(ev);
  return out;
}

function parse(text: string | Buffer, limits = L): ImapParseEvent[] {
  const p = new ImapCommandParser(limits);
  p.feed(Buffer.isBuffer(text) ? text : Buffer.from(text, 'latin1'));
  return all(p);
}

function command(ev: ImapParseEvent | undefined) {
  assert.equal(ev?.kind, 'command', JSON.stringify(ev));
  return (ev as Extract<ImapParseEvent, { kind: 'command' }>).command;
}

describe('IMAP pre-auth parser: valid input', () => {
  it('reads atoms, quoted strings with escapes, NIL and lists', () => {
    const [ev] = parse('a1 login "al\\"ice" "p\\\\w d"\r\n');
    const c = command(ev);
    assert.equal(c.tag, 'a1');
    assert.equal(c.name, 'LOGIN');
    assert.deepEqual(c.args.map(argText), ['al"ice', 'p\\w d']);
    const [id] = parse('x ID ("name" "Thunderbird" "version" NIL)\r\n');
    const args = command(id).args;
    assert.equal(args[0]?.kind, 'list');
    const [nil] = parse('y ID NIL\r\n');
    assert.equal(command(nil).args[0]?.kind, 'nil');
  });

  it('accepts a bare LF and a command split over many chunks', () => {
    const p = new ImapCommandParser(L);
    for (const ch of 'a CAPABILITY\r\nb NOOP\n') {
      p.feed(Buffer.from(ch));
    }
    const evs = all(p);
    assert.deepEqual(
      evs.map((e) => command(e).name),
      ['CAPABILITY', 'NOOP'],
    );
  });

  it('synchronising literals ask for a continuation; LITERAL+ does not', () => {
    const p = new ImapCommandParser(L);
    p.feed(Buffer.from('a LOGIN {5}\r\n'));
    assert.deepEqual(all(p), [{ kind: 'continue' }]);
    p.feed(Buffer.from('alice {6}\r\n'));
    assert.deepEqual(all(p), [{ kind: 'continue' }]);
    p.feed(Buffer.from('se"c\r\n\r\n'));
    const c = command(all(p)[0]);
    assert.deepEqual(c.args.map(argText), ['alice', 'se"c\r\n']);
    const [plus] = parse('b LOGIN {5+}\r\nalice {3+}\r\npw!\r\n');
    assert.deepEqual(command(plus).args.map(argText), ['alice', 'pw!']);
  });

  it('keeps pipelined bytes after the last command for the backend', () => {
    const p = new ImapCommandParser(L);
    p.feed(Buffer.from('a LOGIN u p\r\nb SELECT INBOX\r\nc FETCH 1 (FL'));
    assert.equal(command(p.next()).name, 'LOGIN');
    assert.equal(p.takeRemaining().toString(), 'b SELECT INBOX\r\nc FETCH 1 (FL');
    assert.equal(p.buffered, 0);
  });

  it('line mode returns one raw line (SASL responses)', () => {
    const p = new ImapCommandParser(L);
    p.expectLine();
    p.feed(Buffer.from('AGFsaWNlAHNlY3JldA==\r\nz NOOP\r\n'));
    const ev = p.next();
    assert.equal(ev?.kind, 'line');
    assert.equal(command(p.next()).name, 'NOOP');
  });
});

describe('IMAP pre-auth parser: hostile input', () => {
  it('an oversized line is fatal, even without a line end', () => {
    const evs = parse('a LOGIN ' + 'x'.repeat(L.maxLineBytes + 10));
    assert.deepEqual(evs, [{ kind: 'error', tag: undefined, text: 'Line too long.', fatal: true }]);
    const evs2 = parse('a LOGIN ' + 'x'.repeat(L.maxLineBytes + 10) + '\r\nb NOOP\r\n');
    assert.equal(evs2.length, 1);
    assert.equal((evs2[0] as { fatal: boolean }).fatal, true);
  });

  it('an oversized synchronising literal is refused without reading it', () => {
    const evs = parse(`a1 LOGIN {${L.maxLiteralBytes + 1}}\r\nb NOOP\r\n`);
    assert.deepEqual(evs[0], { kind: 'error', tag: 'a1', text: 'Literal too big.', fatal: false });
    assert.equal(command(evs[1]).name, 'NOOP');
  });

  it('an oversized non-synchronising literal is fatal (its bytes are already coming)', () => {
    const evs = parse(`a1 LOGIN {99999999+}\r\nxxxx`);
    assert.deepEqual(evs, [{ kind: 'error', tag: 'a1', text: 'Literal too big.', fatal: true }]);
  });

  it('many small literals cannot add up beyond the caps', () => {
    const p = new ImapCommandParser(L);
    let fatal = false;
    for (let i = 0; i < 5000 && !fatal; i++) {
      p.feed(Buffer.from('x {4+}\r\nabcd '));
      for (let ev = p.next(); ev; ev = p.next()) if (ev.kind === 'error' && ev.fatal) fatal = true;
    }
    assert.ok(fatal);
    assert.ok(p.buffered <= L.maxLineBytes + L.maxLiteralBytes);
  });

  it('thousands of {0+} literals in one write: no stack overflow, one bounded fatal error', () => {
    const evs = parse('a LOGIN {0+}\r\n' + '{0+}\r\n'.repeat(12_000));
    assert.deepEqual(evs, [{ kind: 'error', tag: 'a', text: 'Too many literals.', fatal: true }]);
  });

  it('caps synchronising literals per command: at most maxLiteralsPerCommand "+" replies', () => {
    const p = new ImapCommandParser(L);
    p.feed(Buffer.from('a LOGIN {0}\r\n' + '{0}\r\n'.repeat(12_000), 'latin1'));
    const evs = all(p);
    const continues = evs.filter((e) => e.kind === 'continue').length;
    assert.equal(continues, L.maxLiteralsPerCommand);
    assert.deepEqual(evs[continues], {
      kind: 'error',
      tag: 'a',
      text: 'Too many literals.',
      fatal: false,
    });
    // the rest are tagless "{0}" lines: refused at once, without asking for their bytes
    assert.ok(
      evs.slice(continues + 1).every((e) => e.kind === 'error' && e.text === 'Invalid tag.'),
    );
  });

  it('as many literals as the cap allows still make a command', () => {
    const n = L.maxLiteralsPerCommand;
    const [ev] = parse('a ID (' + 'x {1+}\r\ny '.repeat(n) + 'NIL)\r\n');
    const list = command(ev).args[0];
    assert.equal(list?.kind === 'list' && list.items.filter((i) => i.kind === 'string').length, n);
    const [over] = parse('a ID (' + 'x {1+}\r\ny '.repeat(n + 1) + 'NIL)\r\n');
    assert.deepEqual(over, { kind: 'error', tag: 'a', text: 'Too many literals.', fatal: true });
  });

  it('a line at the cap is accepted however it is cut into chunks', () => {
    const line = `a NOOP ${'x'.repeat(L.maxLineBytes - 7)}`;
    assert.equal(line.length, L.maxLineBytes);
    for (const cut of [line.length, line.length + 1]) {
      const p = new ImapCommandParser(L);
      const bytes = Buffer.from(`${line}\r\n`);
      p.feed(bytes.subarray(0, cut));
      assert.equal(p.next(), undefined, `cut at ${cut}`);
      p.feed(bytes.subarray(cut));
      assert.equal(command(p.next()).name, 'NOOP', `cut at ${cut}`);
    }
    const [over] = parse(`${line}x\r\n`);
    assert.deepEqual(over, { kind: 'error', tag: undefined, text: 'Line too long.', fatal: true });
  });

  it('command names and NIL are upper-cased in ASCII only', () => {
    // "\u017F".toUpperCase() is "S": the 8-bit atom must not read as STARTTLS
    const [ev] = parse(Buffer.from('a \u017FTARTTLS\r\nb ID n\u0131l\r\n', 'utf8'));
    assert.notEqual(command(ev).name, 'STARTTLS');
    const [, id] = parse(Buffer.from('a NOOP\r\nb ID n\u0131l\r\n', 'utf8'));
    assert.equal(command(id).args[0]?.kind, 'atom');
  });

  it('refuses bad tags', () => {
    for (const line of [
      '* NOOP',
      '+ NOOP',
      'a{ NOOP',
      'a" NOOP',
      `${'t'.repeat(L.maxTagBytes + 1)} NOOP`,
      ' NOOP',
      'a\x01b NOOP',
      'a%b NOOP',
    ]) {
      const [ev] = parse(`${line}\r\n`);
      assert.deepEqual(
        ev,
        { kind: 'error', text: 'Invalid tag.', fatal: false },
        JSON.stringify(line),
      );
    }
  });

  it('refuses NUL anywhere, in quoted strings and in literals', () => {
    for (const input of [
      'a LOGIN "al\0ice" pw\r\n',
      'a LOGIN {5+}\r\nal\0ce pw\r\n',
      'a NO\0OP\r\n',
    ]) {
      const [ev] = parse(input);
      assert.equal(ev?.kind, 'error', JSON.stringify(input));
      assert.match((ev as { text: string }).text, /NUL/);
    }
  });

  it('reports syntax errors with the tag and recovers at the next line', () => {
    const cases = [
      'a LOGIN "unterminated',
      'a LOGIN "bad\\escape" x',
      'a LOGIN  x',
      'a',
      'a ID ((((("deep")))))',
      'a LOGIN x)',
    ];
    for (const c of cases) {
      const evs = parse(`${c}\r\nb NOOP\r\n`);
      assert.equal(evs[0]?.kind, 'error', c);
      assert.equal((evs[0] as { tag?: string }).tag, 'a', c);
      assert.equal(command(evs[1]).name, 'NOOP', c);
    }
  });

  it('10,000 garbage lines give 10,000 non-fatal errors and bounded memory', () => {
    const p = new ImapCommandParser(L);
    let errors = 0;
    for (let i = 0; i < 10_000; i++) {
      p.feed(Buffer.from(`\x7f\x01garbage ${i} (((("\r\n`));
      for (let ev = p.next(); ev; ev = p.next()) if (ev.kind === 'error') errors++;
    }
    assert.equal(errors, 10_000);
    assert.equal(p.buffered, 0);
  });

  it('binary noise never throws', () => {
    let seed = 42;
    const rnd = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    for (let round = 0; round < 200; round++) {
      const p = new ImapCommandParser(L);
      const buf = Buffer.alloc(2000, 0);
      for (let i = 0; i < buf.length; i++) buf[i] = rnd() < 0.05 ? 10 : Math.floor(rnd() * 256);
      p.feed(buf);
      assert.doesNotThrow(() => all(p));
    }
  });
});
