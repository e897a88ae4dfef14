/**
 * `autoport monitor`, the built CLI, against a real control server on a Unix socket (its
 * handlers scripted here): without a terminal it prints one snapshot or says the gateway
 * is not running; in a real pseudo-terminal (util-linux `script`) it draws the live
 * screen, takes keys, asks the gateway to move an account and quits on q.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { startControlServer, type ControlServer } from '../../src/core/control/server.js';
import { closedSession, hello, session, snapshot, transfer } from '../unit/monitor-fixtures.js';
import { ensureBuilt, ROOT, runCli, writeOfflineConfig } from '../support/cli.js';

const hasScript = spawnSync('script', ['--version'], { stdio: 'ignore' }).status === 0;

describe('autoport monitor (built CLI)', () => {
  let dir: string;
  let config: string;
  let socketPath: string;
  let server: ControlServer | undefined;
  const started: string[] = [];
  let snapshots = 0;

  before(() => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'ap-monitor-'));
    socketPath = join(dir, 'ctl.sock');
    config = writeOfflineConfig(dir, ['control:', `  socket: ${socketPath}`]);
  });

  after(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function startGateway(): Promise<void> {
    server = await startControlServer({
      socketPath,
      limits: { watchMinMs: 50 },
      handlers: {
        hello: () => hello,
        snapshot: () => {
          snapshots++;
          return snapshot({
            queue: snapshots,
            sessions: {
              total: 1,
              byProtocol: { imap: 1, pop3: 0, smtp: 0 },
              list: [session('s1', { user: 'alice@example.org', route: 'source' })],
            },
            // a new session closes every few snapshots; each one stays in the list a while
            closed: Array.from({ length: Math.min(3, Math.floor(snapshots / 3)) }, (_, i) =>
              closedSession(`c${Math.floor(snapshots / 3) - i}`),
            ),
            transfers: [transfer('bob@example.org')],
          });
        },
        'accounts.change': () => {
          throw new Error('not used');
        },
        'accounts.import': () => {
          throw new Error('not used');
        },
        'transfer.start': (params) => {
          const { address } = params as { address: string };
          started.push(address);
          return {
            address,
            before: 'failed',
            after: 'captured',
            changed: true,
            message: 'queued first in line',
          };
        },
      },
    });
  }

  it('without a gateway: exit 1, saying it is not running and what to try', async () => {
    const r = await runCli(['monitor', '-c', config]);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stdout, '');
    assert.equal(
      r.stderr,
      `error: autoport proxy is not running (nothing listens on ${socketPath})\n` +
        '  try: start `autoport proxy`, or check control.socket in the config\n',
    );
  });

  it('without a terminal: one snapshot as text, or as JSON', async () => {
    await startGateway();
    const r = await runCli(['monitor', '-c', config]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^autoport 0\.1\.0 {2}pid 4242 {2}up 2h05m {2}sessions 1 /m);
    assert.match(r.stdout, /^ {2}imap +alice@example\.org +192\.0\.2\.10 +source +yes +3m12s/m);
    assert.match(r.stdout, /^ {2}bob@example\.org +pre-copy +INBOX +\u2588+\u2591+ +12\/40 /m);
    const j = await runCli(['monitor', '-c', config, '--json']);
    assert.equal(j.code, 0, j.stderr);
    const parsed = JSON.parse(j.stdout) as { gateway: { pid: number }; transfers: unknown[] };
    assert.equal(parsed.gateway.pid, 4242);
    assert.equal(parsed.transfers.length, 1);
  });

  it(
    'in a terminal: the live screen, j selects, r moves the account, q quits',
    { skip: !hasScript && 'util-linux `script` is not installed' },
    async () => {
      if (!server) await startGateway();
      const cmd = `stty cols 100 rows 30; exec "${process.execPath}" bin/run.js monitor -c "${config}" --interval 250`;
      const child = spawn('script', ['-qfec', cmd, '/dev/null'], {
        cwd: ROOT,
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
      const see = async (text: string) => {
        const deadline = Date.now() + 15_000;
        while (!stripVTControlCharacters(out).includes(text)) {
          if (Date.now() > deadline) {
            // both ends of the raw output: a missing live region (Ink in CI mode draws only
            // <Static>) looks different from a wrong terminal size
            const raw =
              JSON.stringify(out.slice(0, 1500)) + '\n...\n' + JSON.stringify(out.slice(-1500));
            throw new Error(`never saw "${text}" in ${out.length} bytes:\n${raw}`);
          }
          await new Promise((r) => setTimeout(r, 10));
        }
      };
      try {
        await see('alice@example.org');
        child.stdin.write('j');
        await see('> imap');
        child.stdin.write('r');
        await see('alice@example.org: queued first in line');
        assert.deepEqual(started, ['alice@example.org']);
        // wait until several sessions have closed, then check each was printed once
        await see('closed imap c3@example.org');
        child.stdin.write('q');
        assert.equal(await exited, 0);
        const text = stripVTControlCharacters(out);
        for (const id of ['c1', 'c2', 'c3'])
          assert.equal(
            text.split(`closed imap ${id}@example.org`).length - 1,
            1,
            `${id} printed once`,
          );
      } finally {
        child.kill();
      }
    },
  );
});
