import assert from 'node:assert/strict';
import {
  closeSync,
  fstatSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  createLogger,
  formatLogfmt,
  isJournalStream,
  memorySink,
  type LogFormat,
} from '../../src/core/log/index.js';

const TIME = '2026-12-03T09:00:00.000Z';
const now = () => new Date(TIME);

describe('logfmt', () => {
  it('writes time, level and msg first, then the fields, quoting what needs it', () => {
    const line = formatLogfmt({
      level: 'warn',
      time: TIME,
      msg: 'login failed',
      fields: { protocol: 'imap', user: 'bob x', n: 3, ok: false, none: null, skip: undefined },
    });
    assert.equal(
      line,
      `time=${TIME} level=warn msg="login failed" protocol=imap user="bob x" n=3 ok=false none=null\n`,
    );
  });

  it('nested objects become dotted keys; arrays one quoted value', () => {
    const line = formatLogfmt({
      level: 'error',
      time: TIME,
      msg: 'x',
      fields: { err: { name: 'Error', message: 'disk full', code: 'ENOSPC' }, list: [1, 'a'] },
    });
    assert.match(
      line,
      / err\.name=Error err\.message="disk full" err\.code=ENOSPC list="\[1,\\"a\\"\]"\n$/,
    );
  });

  it('a hostile value or key cannot end its pair early or start a line', () => {
    const line = formatLogfmt({
      level: 'info',
      time: TIME,
      msg: 'm',
      fields: {
        user: 'x" client=192.0.2.66 reason="',
        'a b=c"': 'v',
        empty: '',
        nl: 'one\ntwo',
        eq: 'a=b',
        bs: 'back\\slash',
      },
    });
    // the quote in the value is escaped, so a reader sees one user value, not a client key
    assert.equal(
      line,
      `time=${TIME} level=info msg=m user="x\\" client=192.0.2.66 reason=\\"" a_b_c_=v ` +
        `empty="" nl="one\\ntwo" eq="a=b" bs="back\\\\slash"\n`,
    );
  });

  it('the logger writes logfmt and still redacts', () => {
    const sink = memorySink();
    createLogger({ sink, format: 'logfmt', now }).info('a1 LOGIN bob hunter2', {
      password: 'hunter2',
    });
    assert.equal(
      sink.text(),
      `time=${TIME} level=info msg="a1 LOGIN bob [redacted]" password=[redacted]\n`,
    );
  });
});

describe('the journal', () => {
  const dir = mkdtempSync(join(tmpdir(), 'autoport-journal-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('is recognised by device and inode of the very descriptor, not by the variable alone', () => {
    const fd = openSync(join(dir, 'a'), 'w');
    const other = openSync(join(dir, 'b'), 'w');
    try {
      const st = fstatSync(fd, { bigint: true });
      const env = { JOURNAL_STREAM: `${st.dev}:${st.ino}` };
      assert.equal(isJournalStream(fd, env), true);
      assert.equal(isJournalStream(other, env), false, 'a redirected output inherits the variable');
      assert.equal(isJournalStream(fd, {}), false);
      assert.equal(isJournalStream(fd, { JOURNAL_STREAM: 'garbage' }), false);
      assert.equal(isJournalStream(undefined, env), false);
      assert.equal(isJournalStream(9999, env), false, 'a closed descriptor');
    } finally {
      closeSync(fd);
      closeSync(other);
    }
  });

  it('every line starts with its sd-daemon priority when the sink is the journal, in every format', () => {
    const saved = process.env.JOURNAL_STREAM;
    const path = join(dir, 'journal');
    const fd = openSync(path, 'w');
    try {
      const st = fstatSync(fd, { bigint: true });
      process.env.JOURNAL_STREAM = `${st.dev}:${st.ino}`;
      const sink = { fd, write: (l: string) => writeSync(fd, l) };
      for (const format of ['json', 'logfmt', 'human', 'auto'] as Array<LogFormat | 'auto'>) {
        const log = createLogger({ sink, format, level: 'debug', now });
        log.error('e');
        log.warn('w');
        log.info('i');
        log.debug('d');
      }
    } finally {
      closeSync(fd);
      if (saved === undefined) delete process.env.JOURNAL_STREAM;
      else process.env.JOURNAL_STREAM = saved;
    }
    const lines = readFileSync(path, 'utf8').trimEnd().split('\n');
    assert.equal(lines.length, 16);
    assert.deepEqual(
      lines.map((l) => l.slice(0, 3)),
      Array.from({ length: 4 }, () => ['<3>', '<4>', '<6>', '<7>']).flat(),
    );
    // journald keeps what follows the prefix as MESSAGE: auto is JSON there
    assert.deepEqual(JSON.parse(lines[13]!.slice(3)), { time: TIME, level: 'warn', msg: 'w' });
  });

  it('no prefix elsewhere, unless asked for', () => {
    const sink = memorySink();
    createLogger({ sink, format: 'json', now }).warn('w');
    createLogger({ sink, format: 'json', now, priorityPrefix: true }).warn('w');
    assert.deepEqual(
      sink.lines.map((l) => l.slice(0, 3)),
      ['{"t', '<4>'],
    );
  });
});
