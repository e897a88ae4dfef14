import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatOperatorError, reportCommandError } from '../../src/cli/errors.js';
import { renderTable } from '../../src/cli/table.js';
import { OperatorError } from '../../src/core/errors.js';

describe('renderTable', () => {
  it('pads columns to the widest cell and trims line ends', () => {
    assert.equal(
      renderTable([
        ['yes', 'IMAP4rev1', 'the protocol'],
        ['no', 'UIDPLUS', ''],
      ]),
      'yes  IMAP4rev1  the protocol\nno   UIDPLUS\n',
    );
  });

  it('underlines a header and indents', () => {
    assert.equal(
      renderTable([['a', 'b']], { header: ['ROLE', 'OK'], indent: 2 }),
      '  ROLE  OK\n  ----  --\n  a     b\n',
    );
  });

  it('wraps the last column with a hanging indent', () => {
    const out = renderTable([['k', 'one two three four five six']], { maxWidth: 15 });
    assert.equal(out, 'k  one two\n   three four\n   five six\n');
    for (const line of out.trimEnd().split('\n')) assert.ok(line.length <= 15, line);
  });

  it('cuts a word longer than the width and flattens line breaks', () => {
    assert.equal(
      renderTable([['k', 'abcdefghijklmnop']], { maxWidth: 13 }),
      'k  abcdefghij\n   klmnop\n',
    );
    assert.equal(renderTable([['a\r\nb', 'c']]), 'a b  c\n');
  });

  it('renders nothing for no rows', () => {
    assert.equal(renderTable([]), '');
  });
});

describe('operator errors in commands', () => {
  it('prints one cause and one hint, as text and as JSON', () => {
    const err = new OperatorError(
      'nothing listens on 127.0.0.1:1',
      'is the server running?',
      'ECONNREFUSED',
    );
    assert.equal(
      formatOperatorError(err),
      'error: nothing listens on 127.0.0.1:1\n  try: is the server running?\n',
    );
    const out: string[] = [];
    const errs: string[] = [];
    const before = process.exitCode;
    reportCommandError(err, true, { stdout: (t) => out.push(t), stderr: (t) => errs.push(t) });
    assert.equal(process.exitCode, 1);
    process.exitCode = before;
    assert.deepEqual(JSON.parse(out.join('')), {
      ok: false,
      error: {
        code: 'ECONNREFUSED',
        message: 'nothing listens on 127.0.0.1:1',
        hint: 'is the server running?',
      },
    });
    assert.equal(errs.join(''), formatOperatorError(err));
  });

  it('rethrows anything that is not an operator error', () => {
    const bug = new TypeError('bug');
    assert.throws(
      () => reportCommandError(bug, false, { stdout: () => undefined, stderr: () => undefined }),
      bug,
    );
  });
});
