// Times on screen are the host's local time; the expected text is written in UTC.
process.env.TZ = 'UTC';

/**
 * `autoport monitor` without a terminal: one snapshot as text or JSON, fetched from a real
 * control server on a Unix socket; and the pure parts of the screen (bar, sparkline,
 * columns that fit).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { after, test } from 'node:test';
import { ControlUnavailableError } from '../../src/core/control/client.js';
import { startControlServer } from '../../src/core/control/server.js';
import { progressBar, sparkline, wrappedLines } from '../../src/tui/format.js';
import { renderSnapshotText } from '../../src/tui/report.js';
import { printMonitorSnapshot } from '../../src/tui/run.js';
import { layoutColumns, type Column } from '../../src/tui/table.js';
import { makeTempDir, removeDir } from '../support/tmp.js';
import {
  closedSession,
  hello,
  iso,
  node,
  session,
  snapshot,
  transfer,
} from './monitor-fixtures.js';

const dir = makeTempDir('monitor-report');
after(() => removeDir(dir));

const busy = snapshot({
  sessions: {
    total: 1,
    byProtocol: { imap: 1, pop3: 0, smtp: 0 },
    list: [session('s1', { user: 'alice@example.org', route: 'source' })],
  },
  transfers: [transfer('bob@example.org')],
  errors: [
    { at: iso(-5000), kind: 'transfer', subject: 'carol@example.org', message: 'quota exceeded' },
  ],
  closed: [closedSession('c1')],
});

test('one snapshot as text: summary, every table and the last closed sessions', async () => {
  const socketPath = join(dir, 'ok.sock');
  const server = await startControlServer({
    socketPath,
    handlers: {
      hello: () => hello,
      snapshot: () => busy,
      'accounts.change': () => {
        throw new Error('not used');
      },
      'accounts.import': () => {
        throw new Error('not used');
      },
      'transfer.start': () => {
        throw new Error('not used');
      },
    },
  });
  try {
    let text = '';
    await printMonitorSnapshot({ socketPath, json: false, columns: 120 }, (t) => (text += t));
    text = stripVTControlCharacters(text);
    assert.match(
      text,
      /^autoport 0\.1\.0 {2}pid 4242 {2}up 2h05m {2}sessions 1 \(imap 1, pop3 0, smtp 0\) {2}queue 4$/m,
    );
    assert.match(text, /^sessions \(1 open\)$/m);
    assert.match(
      text,
      /^ {2}imap +alice@example\.org +192\.0\.2\.10 +source +yes +3m12s +2 KB +3\.0 MB$/m,
    );
    assert.match(text, /^transfers \(1 running\)$/m);
    // 120 columns: a 24-cell bar, 12/40 of it is 7 cells
    assert.match(
      text,
      new RegExp(
        `^ {2}bob@example\\.org +pre-copy +INBOX +${'\u2588'.repeat(7)}${'\u2591'.repeat(17)} +12/40 +1\\.5 MB/s +0:32 +2 fld$`,
        'm',
      ),
    );
    assert.match(text, /^ {2}09:59:55 +transfer +carol@example\.org +quota exceeded$/m);
    assert.match(text, /^last 1 closed sessions$/m);
    assert.match(
      text,
      /^ {2}09:59:59 closed imap c1@example\.org from 192\.0\.2\.10 -> destination tls/m,
    );

    let json = '';
    await printMonitorSnapshot({ socketPath, json: true, columns: 120 }, (t) => (json += t));
    assert.deepEqual(JSON.parse(json), busy);
  } finally {
    await server.close();
  }
});

test('no gateway: the one-shot says so with what to try', async () => {
  const socketPath = join(dir, 'none.sock');
  await assert.rejects(
    printMonitorSnapshot({ socketPath, json: false, columns: 80 }, () => assert.fail('printed')),
    (err: unknown) => {
      assert.ok(err instanceof ControlUnavailableError);
      assert.match(err.message, /autoport proxy is not running/);
      assert.match(err.hint, /start `autoport proxy`/);
      return true;
    },
  );
});

test('progress bars and sparklines', () => {
  const F = '\u2588';
  const E = '\u2591';
  assert.equal(progressBar(12, 40, 10), `${F.repeat(3)}${E.repeat(7)}`);
  assert.equal(progressBar(0, 40, 4), E.repeat(4));
  // full only when done: 39/40 still shows a gap
  assert.equal(progressBar(39, 40, 10), `${F.repeat(9)}${E}`);
  assert.equal(progressBar(40, 40, 10), F.repeat(10));
  assert.equal(progressBar(0, 0, 3), E.repeat(3));
  assert.equal(sparkline([0, 0, 0]), '\u2581\u2581\u2581');
  assert.equal(sparkline([0, 1, 7]), '\u2581\u2582\u2588');
  assert.equal(sparkline([]), '');
});

test('wrappedLines counts lines as a word wrap makes them', () => {
  assert.equal(wrappedLines('aaa bbb', 7), 1);
  assert.equal(wrappedLines('aaa bbb', 5), 2);
  assert.equal(wrappedLines('abcdefghij', 4), 3);
  assert.equal(wrappedLines('ab abcdefghij x', 4), 4);
});

test('columns that do not fit go by their drop order; the growing one takes the rest', () => {
  const col = (title: string, width: number, drop = 0, grow = false): Column<string> => ({
    title,
    width,
    drop,
    grow,
    cell: () => '',
  });
  const cols = [col('A', 10), col('B', 10, 0, true), col('C', 10, 2), col('D', 10, 1)];
  const fit = (w: number) => layoutColumns(cols, w).map((c) => `${c.column.title}${c.width}`);
  // 4 columns of 10 and 3 gaps of 2: 46
  assert.deepEqual(fit(60), ['A10', 'B24', 'C10', 'D10']);
  assert.deepEqual(fit(46), ['A10', 'B10', 'C10', 'D10']);
  assert.deepEqual(fit(45), ['A10', 'B21', 'D10']);
  assert.deepEqual(fit(30), ['A10', 'B18']);
  // nothing left to drop: the rest stays, wider than the terminal (Ink cuts it)
  assert.deepEqual(fit(10), ['A10', 'B10']);
});

test('--once with several nodes: the nodes line and a NODE column, as on the screen', () => {
  const text = stripVTControlCharacters(
    renderSnapshotText(
      snapshot({
        sessions: {
          total: 2,
          byProtocol: { imap: 2, pop3: 0, smtp: 0 },
          list: [
            session('r1', { node: 'gw2', user: 'bob@example.org', route: 'destination' }),
            session('s1', { user: 'alice@example.org', route: 'source' }),
          ],
        },
        transfers: [transfer('carol@example.org', { node: 'gw2' })],
        nodes: [node('gw1', { sessions: 1 }), node('gw2', { sessions: 1, transfers: 1 })],
      }),
      120,
    ),
  );
  assert.match(text, /^nodes 2\/2 alive {2}gw1 \(here\) 1 session {2}gw2 1 session 1 transfer$/m);
  assert.match(text, /^ {2}NODE +PROTO +ACCOUNT +CLIENT +ROUTE +TLS +TIME +IN +OUT$/m);
  assert.match(text, /^ {2}gw2 +imap +bob@example\.org +192\.0\.2\.10 +destination +yes +3m12s/m);
  assert.match(text, /^ {2}gw1 +imap +alice@example\.org +192\.0\.2\.10 +source +yes +3m12s/m);
  assert.match(text, /^ {2}NODE +ACCOUNT +STEP +FOLDER +PROGRESS/m);
  assert.match(text, /^ {2}gw2 +carol@example\.org +pre-copy +INBOX +\u2588/m);

  const alone = stripVTControlCharacters(renderSnapshotText(busy, 120));
  assert.ok(!alone.includes('NODE') && !/^nodes /m.test(alone), alone);
});
