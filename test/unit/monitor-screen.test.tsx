// Times on screen are the host's local time; the expected frames are written in UTC.
process.env.TZ = 'UTC';

import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { cleanup, render } from 'ink-testing-library';
import { App } from '../../src/tui/app.js';
import {
  closedSession,
  count,
  FakeLink,
  iso,
  node,
  plain,
  session,
  snapshot,
  T0,
  transfer,
  waitForFrame,
} from './monitor-fixtures.js';

const clock = () => T0;

afterEach(() => cleanup());

function start(link = new FakeLink(), props: { minRedrawMs?: number; onQuit?: () => void } = {}) {
  const ui = render(
    <App link={link} clock={clock} minRedrawMs={props.minRedrawMs ?? 0} {...props} />,
  );
  const until = (check: (f: string) => boolean, what: string) =>
    waitForFrame(ui.lastFrame, check, what);
  const has = (text: string) => until((f) => f.includes(text), `with "${text}"`);
  const lacks = (text: string) => until((f) => !f.includes(text), `without "${text}"`);
  return { ui, link, until, has, lacks };
}

const twoSessions = snapshot({
  sessions: {
    total: 2,
    byProtocol: { imap: 1, pop3: 1, smtp: 0 },
    list: [
      session('s1', { user: 'alice@example.org', route: 'source' }),
      session('s2', {
        protocol: 'pop3',
        listener: 'pop3s',
        user: 'bob@example.org',
        client: '198.51.100.7',
        route: 'destination',
        tls: false,
        bytesIn: 512,
        bytesOut: 0,
      }),
    ],
  },
});

test('the summary strip and the session list show the snapshot', async () => {
  const { link, has } = start();
  link.connect(twoSessions);
  const frame = await has('alice@example.org');
  assert.match(
    frame,
    /autoport 0\.1\.0 {2}pid 4242 {2}up 2h05m {2}sessions 2 \(imap 1, pop3 1, smtp 0\) {2}queue 4/,
  );
  assert.match(
    frame,
    /accounts 429 {2}migrated 120 {2}transferring 2 {2}captured 4 {2}failed 1 {2}excluded 2 {2}unknown 300/,
  );
  // current minute's counts, then the trend over the three minutes
  assert.match(
    frame,
    /smtp\/min {2}source 8 \u2583\u2585\u2588 {2}destination 40 \u2583\u2585\u2588 {3}logins\/min {2}ok 3 \u2586\u2588\u2584 {2}refused 2 \u2581\u2585\u2588/,
  );
  assert.match(frame, /\[1 sessions 2\]/);
  const rows = frame.split('\n');
  const header = rows.find((r) => r.includes('PROTO'));
  assert.match(header ?? '', /PROTO +ACCOUNT +CLIENT +ROUTE +TLS +TIME +IN +OUT/);
  assert.ok(
    rows.some((r) =>
      /^ {2}imap +alice@example\.org +192\.0\.2\.10 +source +yes +3m12s +2 KB +3\.0 MB$/.test(r),
    ),
    frame,
  );
  assert.ok(
    rows.some((r) =>
      /^ {2}pop3s +bob@example\.org +198\.51\.100\.7 +destination +no +3m12s +512 B +0 B$/.test(r),
    ),
    frame,
  );
});

test('a transfer shows its folder, a progress bar of its messages, rate and ETA', async () => {
  const { ui, link, has } = start();
  link.connect(snapshot({ transfers: [transfer('bob@example.org')] }));
  await has('[1 sessions 0]');
  ui.stdin.write('2');
  const frame = await has('[2 transfers 1]');
  // 12 of 40 in a 16-cell bar (100 columns): 4 cells filled
  const bar = `${'\u2588'.repeat(4)}${'\u2591'.repeat(12)}`;
  const row = frame.split('\n').find((r) => r.includes('bob@example.org')) ?? '';
  // at 100 columns the step stays (SWITCHING is when the user is locked out); DONE goes
  assert.match(row, /^ {2}bob@example\.org +pre-copy +INBOX +/);
  assert.ok(row.includes(` ${bar} `), row);
  assert.match(row, / 12\/40 +1\.5 MB\/s +0:32$/);

  link.push(
    snapshot({
      transfers: [transfer('bob@example.org', { folderCopied: 40, folderEtaSeconds: 0 })],
    }),
  );
  const done = await has('40/40');
  assert.ok(done.includes(` ${'\u2588'.repeat(16)} `), done);
});

test('a folder still being scanned has no bar yet', async () => {
  const { ui, link, has } = start();
  link.connect(
    snapshot({
      transfers: [transfer('carol@example.org', { phase: 'scan', folderEtaSeconds: undefined })],
    }),
  );
  ui.stdin.write('2');
  const frame = await has('carol@example.org');
  assert.match(frame, /carol@example\.org +pre-copy +INBOX +scanning +1\.5 MB\/s +--$/m);
  assert.ok(!frame.includes('\u2591'), frame);
});

test('when the gateway goes away the screen says why and when it retries, and keeps the numbers as stale', async () => {
  const { link, has, lacks } = start();
  await has('connecting to the gateway at /run/autoport/autoport.sock...');
  link.setStatus({ state: 'lost', reason: 'autoport proxy is not running', retryAt: T0 + 4000 });
  // Ink wraps a line longer than the terminal; the message is checked as one line
  const oneLine = (f: string) => f.replace(/\s*\n\s*/g, ' ');
  let frame = await has('retrying');
  assert.ok(
    frame.includes(
      'gateway not reachable at /run/autoport/autoport.sock: autoport proxy is not running; retrying in 4s',
    ),
    frame,
  );
  assert.ok(!frame.includes('stale'), 'nothing is stale before the first snapshot');

  link.connect(twoSessions);
  await lacks('not reachable');
  link.setStatus({
    state: 'lost',
    reason: 'the gateway closed the connection',
    retryAt: T0 + 2500,
  });
  frame = await has('retrying');
  assert.ok(
    oneLine(frame).includes(
      'gateway not reachable at /run/autoport/autoport.sock: the gateway closed the connection; retrying in 3s',
    ),
    frame,
  );
  assert.ok(frame.includes('stale: last snapshot 10:00:00'), frame);
  assert.ok(frame.includes('alice@example.org'), 'the last snapshot stays on screen');

  link.setStatus({ state: 'connecting', lastError: 'the gateway closed the connection' });
  frame = await has('connecting...');
  assert.ok(
    oneLine(frame).includes(
      'gateway not reachable at /run/autoport/autoport.sock: the gateway closed the connection; connecting...',
    ),
    frame,
  );
  link.connect(twoSessions);
  frame = await lacks('not reachable');
  assert.ok(!frame.includes('stale'), frame);
});

test('a closed session is printed once above the live region, in the order they closed', async () => {
  const { link, has } = start();
  const c1 = closedSession('c1', { closedAt: iso(-2000) });
  const c2 = closedSession('c2', {
    closedAt: iso(-1000),
    user: undefined,
    route: undefined,
    tls: false,
    reason: 'preauth-timeout',
    durationMs: 30_000,
    bytesIn: 0,
    bytesOut: 0,
  });
  const line1 =
    '09:59:58 closed imap c1@example.org from 192.0.2.10 -> destination tls, 1m15s, in 2 KB out 3.0 MB: client-logout';
  const line2 =
    '09:59:59 closed imap (no login) from 192.0.2.10, 30s, in 0 B out 0 B: preauth-timeout';
  link.connect(snapshot({ closed: [c1] }));
  await has('c1@example.org');
  link.push(snapshot({ closed: [c2, c1], queue: 5 }));
  await has('queue 5');
  link.push(snapshot({ closed: [c2, c1], queue: 6 }));
  // the live region is redrawn below; what Static printed stays above, once
  const frame = (await has('queue 6')).replace(/\n/g, ' ');
  assert.equal(count(frame, line1.slice(0, 60)), 1, frame);
  assert.equal(count(frame, 'preauth-timeout'), 1, frame);
  assert.ok(frame.indexOf(line1.slice(0, 60)) < frame.indexOf(line2.slice(0, 40)), frame);
  assert.ok(frame.indexOf('preauth-timeout') < frame.indexOf('autoport 0.1.0'), frame);
});

test('snapshots that come faster than the screen redraws are coalesced to the newest', async () => {
  // one redraw a second at most here, so the pushes below (microseconds apart, each in its
  // own turn of the event loop, where React would draw each) all fall within one interval
  const { ui, link, has } = start(new FakeLink(), { minRedrawMs: 1000 });
  link.connect(snapshot({ queue: 100 }));
  await has('queue 100');
  for (let q = 101; q <= 110; q++) {
    link.push(snapshot({ queue: q }));
    await new Promise((r) => setImmediate(r));
  }
  await has('queue 110');
  const seen = ui.frames.map(plain);
  for (let q = 101; q <= 109; q++)
    assert.ok(!seen.some((f) => f.includes(`queue ${q}\n`)), `queue ${q} was drawn`);
});

test('keys: 1/2/3 and Tab switch views, Shift-Tab goes back', async () => {
  const { ui, link, has } = start();
  link.connect(
    snapshot({
      transfers: [transfer('bob@example.org')],
      errors: [
        {
          at: iso(-5000),
          kind: 'login',
          subject: 'carol@example.org',
          message: 'the source refused the password',
        },
      ],
    }),
  );
  await has('[1 sessions 0]');
  ui.stdin.write('3');
  let frame = await has('[3 errors 1]');
  assert.match(frame, /09:59:55 +login +carol@example\.org +the source refused the password/);
  ui.stdin.write('\t');
  frame = await has('[1 sessions 0]');
  assert.ok(frame.includes('no open sessions'), frame);
  ui.stdin.write('\t');
  await has('[2 transfers 1]');
  ui.stdin.write('\u001B[Z');
  await has('[1 sessions 0]');
});

test('keys: / filters by account or client, Enter keeps the filter, Esc clears it', async () => {
  const { ui, link, has, lacks, until } = start();
  link.connect(twoSessions);
  await has('bob@example.org');
  ui.stdin.write('/');
  await has('filter: _');
  for (const ch of 'ALI') ui.stdin.write(ch);
  let frame = await has('filter: ALI_');
  assert.ok(frame.includes('alice@example.org'), frame);
  assert.ok(!frame.includes('bob@example.org'), frame);
  assert.ok(frame.includes('[1 sessions 1]'), 'the count is of the filtered rows');
  ui.stdin.write('\u007F');
  await has('filter: AL_');
  ui.stdin.write('\r');
  frame = await until((f) => /filter: AL$/m.test(f), 'with the filter kept, not edited');
  // by client address
  ui.stdin.write('\u001B');
  await lacks('filter:');
  ui.stdin.write('/');
  for (const ch of '198.51') ui.stdin.write(ch);
  frame = await has('filter: 198.51_');
  assert.ok(frame.includes('bob@example.org') && !frame.includes('alice@example.org'), frame);
  ui.stdin.write('\u001B');
  frame = await lacks('filter:');
  assert.ok(frame.includes('alice@example.org') && frame.includes('bob@example.org'), frame);
  // nothing matches
  ui.stdin.write('/');
  for (const ch of 'zzz') ui.stdin.write(ch);
  await has('no open session matches the filter');
});

test('keys: j/k select an account and r moves it now through the link, showing the answer', async () => {
  const { ui, link, has } = start();
  link.connect(twoSessions);
  await has('bob@example.org');
  ui.stdin.write('r');
  await has('select a row first');
  ui.stdin.write('j');
  let frame = await has('> imap');
  ui.stdin.write('j');
  frame = await has('> pop3s');
  assert.ok(!frame.includes('> imap'), frame);
  ui.stdin.write('r');
  frame = await has('bob@example.org: queued first in line');
  assert.deepEqual(link.started, ['bob@example.org']);

  // an error from the gateway is shown with what to try
  link.outcome = (address) => ({
    ok: false,
    address,
    message: 'bob@example.org is excluded',
    hint: 'include it first: autoport accounts include bob@example.org',
  });
  ui.stdin.write('k');
  await has('> imap');
  ui.stdin.write('\r');
  frame = await has('try: include it first');
  assert.ok(frame.includes('alice@example.org: bob@example.org is excluded'), frame);
  assert.deepEqual(link.started, ['bob@example.org', 'alice@example.org']);
});

test('keys: r on a transfer row retries that account; a session without login has nothing to move', async () => {
  const { ui, link, has } = start();
  link.connect(
    snapshot({
      sessions: {
        total: 1,
        byProtocol: { imap: 1, pop3: 0, smtp: 0 },
        list: [session('s9', { user: undefined })],
      },
      transfers: [transfer('dave@example.org'), transfer('erin@example.org')],
    }),
  );
  await has('[1 sessions 1]');
  ui.stdin.write('j');
  await has('> imap');
  ui.stdin.write('r');
  await has('this row has no account to move');
  assert.deepEqual(link.started, []);
  ui.stdin.write('2');
  await has('[2 transfers 2]');
  ui.stdin.write('\u001B[B');
  ui.stdin.write('\u001B[B');
  await has('> erin@example.org');
  ui.stdin.write('r');
  await has('erin@example.org: queued first in line');
  assert.deepEqual(link.started, ['erin@example.org']);
});

test('the selection follows its row when new rows arrive above it', async () => {
  const { ui, link, has } = start();
  link.connect(twoSessions);
  await has('bob@example.org');
  ui.stdin.write('j');
  ui.stdin.write('j');
  await has('> pop3s');
  const list = [session('s0', { user: 'zoe@example.org' }), ...twoSessions.sessions.list];
  link.push(snapshot({ sessions: { total: 3, byProtocol: { imap: 2, pop3: 1, smtp: 0 }, list } }));
  await has('zoe@example.org');
  ui.stdin.write('r');
  await has('bob@example.org: queued first in line');
  assert.deepEqual(link.started, ['bob@example.org']);
});

test('q quits, and so does Ctrl-C, also while typing a filter', async () => {
  let quit = 0;
  const { ui, link, has } = start(new FakeLink(), { onQuit: () => quit++ });
  link.connect(twoSessions);
  await has('alice@example.org');
  ui.stdin.write('q');
  await waitForFrame(
    () => String(quit),
    (n) => n === '1',
    'quit after q',
  );
  cleanup();

  let quit2 = 0;
  const second = start(new FakeLink(), { onQuit: () => quit2++ });
  second.link.connect(twoSessions);
  await second.has('alice@example.org');
  second.ui.stdin.write('/');
  second.ui.stdin.write('q');
  await second.has('filter: q_');
  assert.equal(quit2, 0, 'q typed into the filter does not quit');
  second.ui.stdin.write('\u0003');
  await waitForFrame(
    () => String(quit2),
    (n) => n === '1',
    'quit after Ctrl-C',
  );
});

test('a narrow, short terminal drops columns, shortens the strip and shows "+N more"', async () => {
  const { ui, link, has, until } = start();
  const list = Array.from({ length: 12 }, (_, i) =>
    session(`n${i}`, { user: `user${String(i).padStart(2, '0')}@example.org`, route: 'source' }),
  );
  link.connect(
    snapshot({ sessions: { total: 12, byProtocol: { imap: 12, pop3: 0, smtp: 0 }, list } }),
  );
  await has('user00@example.org');
  Object.defineProperty(ui.stdout, 'columns', { value: 40, configurable: true });
  Object.defineProperty(ui.stdout, 'rows', { value: 12, configurable: true });
  ui.stdout.emit('resize');
  const frame = await until((f) => f.includes('1 sess 12'), 'at 40x12');
  const lines = frame.split('\n');
  for (const line of lines) assert.ok(line.length <= 40, `"${line}" is wider than 40`);
  // 12 rows: one-line strip, tabs, header, key help and a spare line leave 7: 6 rows + "+6 more"
  assert.match(frame, /^up 2h05m {2}sessions 12 {2}queue 4 {2}migrate/m);
  assert.match(frame, /^ {2}PROTO +ACCOUNT +TIME$/m);
  assert.ok(!frame.includes('CLIENT') && !frame.includes('ROUTE'), frame);
  // the account column takes what is left and marks the cut
  assert.match(frame, /^ {2}imap +user05@example\.o~ +3m12s$/m);
  assert.ok(!frame.includes('user06@'), frame);
  assert.ok(frame.includes('+6 more'), frame);
  assert.ok(lines.length <= 11, `${lines.length} lines on a 12-line terminal`);
  assert.ok(frame.includes('1-3 Tab  / filter  j/k  r move  q quit'), frame);
});

test('several gateway nodes: a nodes line, and a NODE column in sessions and transfers', async () => {
  const { ui, link, has, lacks } = start();
  link.connect(
    snapshot({
      sessions: {
        total: 3,
        byProtocol: { imap: 3, pop3: 0, smtp: 0 },
        list: [
          session('s1', { user: 'alice@example.org', route: 'source' }),
          session('r1', { node: 'gw2', user: 'bob@example.org', route: 'destination' }),
        ],
      },
      transfers: [transfer('carol@example.org', { node: 'gw2' })],
      nodes: [
        node('gw1', { sessions: 1 }),
        node('gw2', { sessions: 2, transfers: 1 }),
        node('gw3', { alive: false, seenAt: iso(-95_000) }),
      ],
    }),
  );
  const frame = await has('bob@example.org');
  assert.match(
    frame,
    /^nodes 2\/3 alive {2}gw1 \(here\) 1 session {2}gw2 2 sessions 1 transfer {2}gw3 down \(seen 1m35s ago\)$/m,
  );
  assert.match(frame, /^ {2}NODE +PROTO +ACCOUNT +CLIENT/m);
  assert.match(frame, /^ {2}gw1 +imap +alice@example\.org +192\.0\.2\.10 +source /m);
  assert.match(frame, /^ {2}gw2 +imap +bob@example\.org +192\.0\.2\.10 +destination /m);
  ui.stdin.write('/');
  await has('filter: _');
  for (const ch of 'gw2') ui.stdin.write(ch);
  const filtered = await has('filter: gw2_');
  assert.ok(filtered.includes('[1 sessions 1]'), 'the filter matches the node');
  assert.ok(!filtered.includes('alice@example.org'), filtered);
  ui.stdin.write('\u001B');
  await lacks('filter:');
  ui.stdin.write('2');
  const transfers = await has('[2 transfers 1]');
  assert.match(transfers, /^ {2}NODE +ACCOUNT +STEP +FOLDER +PROGRESS/m);
  assert.match(transfers, /^ {2}gw2 +carol@example\.org +pre-copy +INBOX /m);
});

test('one node: no NODE column and no nodes line; a failed read of the others is shown', async () => {
  const { link, has } = start();
  link.connect(twoSessions);
  const frame = await has('alice@example.org');
  assert.ok(!frame.includes('NODE') && !/^nodes /m.test(frame), frame);
  link.push(
    snapshot({
      ...twoSessions,
      nodes: [node('gw1'), node('gw2', { sessions: 4 })],
      nodesError: 'could not read the other nodes: timeout; shown as of 2025-03-01T09:59:58.000Z',
    }),
  );
  const failed = await has('could not read the other nodes');
  assert.match(
    failed,
    /^could not read the other nodes: timeout; shown as of 2025-03-01T09:59:58/m,
  );
  assert.match(failed, /^nodes 2\/2 alive {2}gw1 \(here\) 0 sessions {2}gw2 4 sessions$/m);
  assert.match(failed, /^ {2}NODE +PROTO/m);
});
