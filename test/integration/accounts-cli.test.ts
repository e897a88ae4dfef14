/**
 * `autoport accounts ...` and `autoport report ...` through the built CLI, on a real
 * state file and real log files: the exit codes, --json shapes and messages an operator
 * sees, and the single-writer rule while another process (standing in for the gateway)
 * holds the store's lock.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { RelayLogEntry } from '../../src/core/smtp/relay-log.js';
import { openJsonStore } from '../../src/core/state/json-store.js';
import { ensureBuilt, ROOT, runCli, writeOfflineConfig } from '../support/cli.js';

const cli = (args: string[]) => runCli(args, { env: { AUTOPORT_CONFIG: '' } });

const SEALED = { kid: 'k1', iv: 'aXY=', tag: 'dGFn', data: 'c2VjcmV0' };

function relayEntry(time: string, to: string, extra: Partial<RelayLogEntry> = {}): RelayLogEntry {
  return {
    time,
    session: 's1',
    listener: 'smtp',
    client: '192.0.2.1',
    from: 'someone@remote.example',
    recipients: [{ address: to, reason: 'first-login' }],
    size: 1234,
    route: 'source',
    backend: '127.0.0.1:25',
    reply: '250 2.0.0 Ok',
    accepted: true,
    auto: [],
    durationMs: 3,
    ...extra,
  };
}

describe('autoport accounts and report (built CLI)', () => {
  let dir: string;
  let config: string;
  let state: string;
  let holder: ChildProcess | undefined;

  before(async () => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'ap-accounts-cli-'));
    state = join(dir, 'state.json');
    config = writeOfflineConfig(dir);
    const store = await openJsonStore(state, { saveDelayMs: 1 });
    await store.upsert('alice@example.org', {
      state: 'migrated',
      credentials: SEALED,
      lastLogin: '2026-11-02T08:00:00.000Z',
    });
    await store.upsert('bob@example.org', {
      state: 'failed',
      credentials: SEALED,
      reason: 'quota exceeded',
      attempts: 5,
      nextAttemptAt: '2099-01-01T00:00:00.000Z',
    });
    await store.upsert('carol@example.org', {
      state: 'captured',
      credentials: SEALED,
      lastLogin: '2026-11-03T08:00:00.000Z',
    });
    await store.close();
    const now = Date.now();
    const iso = (msAgo: number): string => new Date(now - msAgo).toISOString();
    const lines = [
      relayEntry(iso(3 * 86_400_000), 'sales@example.org'),
      relayEntry(iso(2 * 86_400_000), 'sales@example.org', {
        auto: ['list'],
        listId: '<news.example>',
      }),
      relayEntry(iso(20 * 86_400_000), 'old-alias@example.org'),
      relayEntry(iso(12 * 3_600_000), 'alice@example.org', { route: 'destination' }),
    ];
    mkdirSync(join(dir, 'logs'));
    writeFileSync(
      join(dir, 'logs', 'smtp-relay.jsonl'),
      lines.map((l) => JSON.stringify(l)).join('\n') + '\n',
    );
    writeFileSync(
      join(dir, 'ledger.jsonl'),
      [
        {
          ts: iso(60_000),
          account: 'alice@example.org',
          folder: 'INBOX',
          uidValidity: 1,
          uid: 1,
          outcome: 'copied',
          size: 500,
        },
        {
          ts: iso(50_000),
          account: 'alice@example.org',
          folder: 'INBOX',
          uidValidity: 1,
          uid: 2,
          outcome: 'copied',
          size: 700,
        },
      ]
        .map((l) => JSON.stringify(l))
        .join('\n') + '\n',
    );
  });

  after(() => {
    if (holder?.pid && holder.exitCode === null && holder.signalCode === null)
      process.kill(holder.pid, 'SIGKILL');
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('imports the list of source accounts and lists by state as JSON', async () => {
    const list = join(dir, 'all.txt');
    writeFileSync(
      list,
      '# every mailbox on the old server\nalice@example.org\nbob@example.org\ndave@example.org\n\n',
    );
    const imp = await cli(['accounts', 'import', list, '-c', config, '--json']);
    assert.equal(imp.code, 0, imp.stderr);
    assert.deepEqual(JSON.parse(imp.stdout), {
      added: 1,
      marked: 2,
      unchanged: 0,
      duplicates: 0,
      total: 3,
    });

    const bad = join(dir, 'bad.txt');
    writeFileSync(bad, 'eve@example.org\nnot an address\n');
    const refused = await cli(['accounts', 'import', bad, '-c', config]);
    assert.equal(refused.code, 1);
    assert.match(
      refused.stderr,
      /^error: .*bad\.txt has 1 bad line\(s\), nothing was imported: line 2/m,
    );

    const r = await cli([
      'accounts',
      'list',
      '-c',
      config,
      '--state',
      'failed',
      '--state',
      'unknown',
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const rows = JSON.parse(r.stdout) as Array<{
      address: string;
      state: string;
      hasCredentials: boolean;
    }>;
    assert.deepEqual(
      rows.map((x) => [x.address, x.state, x.hasCredentials]),
      [
        ['bob@example.org', 'failed', true],
        ['dave@example.org', 'unknown', false],
      ],
    );
    assert.doesNotMatch(r.stdout, /c2VjcmV0/);
  });

  it('exclude, show, retry, forget-credentials and include change the state file', async () => {
    const ex = await cli([
      'accounts',
      'exclude',
      'dave@example.org',
      '--reason',
      'left the company',
      '-c',
      config,
    ]);
    assert.equal(ex.code, 0, ex.stderr);
    assert.equal(ex.stdout, 'dave@example.org excluded: the gateway keeps it on the source\n');

    const show = await cli(['accounts', 'show', 'dave@example.org', '-c', config, '--json']);
    const d = JSON.parse(show.stdout) as { state: string; reason: string; imported: boolean };
    assert.deepEqual([d.state, d.reason, d.imported], ['excluded', 'left the company', true]);

    const retry = await cli(['accounts', 'retry', 'bob@example.org', '-c', config, '--json']);
    assert.equal(retry.code, 0, retry.stderr);
    assert.deepEqual(JSON.parse(retry.stdout), {
      address: 'bob@example.org',
      before: 'failed',
      after: 'captured',
      changed: true,
      message: 'bob@example.org back to captured: the worker pool retries it',
    });
    const store = await openJsonStore(state, { readOnly: true });
    const bob = (await store.get('bob@example.org'))!;
    await store.close();
    assert.deepEqual(
      [bob.state, bob.nextAttemptAt, bob.attempts, bob.credentials !== undefined],
      ['captured', undefined, 0, true],
    );

    const again = await cli(['accounts', 'retry', 'alice@example.org', '-c', config]);
    assert.equal(again.code, 1);
    assert.match(
      again.stderr,
      /^error: alice@example\.org is migrated: only a failed account can be retried\n {2}try: /,
    );

    const forget = await cli([
      'accounts',
      'forget-credentials',
      'carol@example.org',
      '-c',
      config,
      '--json',
    ]);
    assert.equal(JSON.parse(forget.stdout).after, 'unknown');

    const inc = await cli(['accounts', 'include', 'dave@example.org', '-c', config]);
    assert.equal(inc.code, 0, inc.stderr);
    assert.match(
      inc.stdout,
      /dave@example\.org included: its next login through the gateway captures it/,
    );

    const missing = await cli(['accounts', 'show', 'zed@example.org', '-c', config, '--json']);
    assert.equal(missing.code, 1);
    assert.equal(JSON.parse(missing.stdout).error.code, 'ENOACCOUNT');
  });

  it('reports leftovers and progress as JSON, CSV and a table, with a --since window', async () => {
    const j = await cli(['report', 'leftovers', '-c', config, '--json', '--since', '7d']);
    assert.equal(j.code, 0, j.stderr);
    const rep = JSON.parse(j.stdout) as {
      rows: Array<{ address: string; status: string; messages: number }>;
    };
    assert.deepEqual(
      rep.rows.map((r) => [r.address, r.status, r.messages]),
      [
        ['bob@example.org', 'captured', 0],
        ['dave@example.org', 'never-logged-in', 0],
        ['carol@example.org', 'not-captured', 0],
        ['sales@example.org', 'mail-only', 2],
      ],
    );
    const all = await cli(['report', 'leftovers', '-c', config, '--csv']);
    assert.equal(all.code, 0, all.stderr);
    const csv = all.stdout.split('\r\n');
    assert.match(csv[0]!, /^address,status,state,cause,/);
    assert.ok(csv.some((l) => l.startsWith('old-alias@example.org,mail-only,,,,1,')));

    const table = await cli(['report', 'leftovers', '-c', config]);
    assert.match(table.stdout, /^sales@example\.org\s+mail-only\s+2\s/m);

    const p = await cli(['report', 'progress', '-c', config, '--json', '--since', '1d']);
    assert.equal(p.code, 0, p.stderr);
    const prog = JSON.parse(p.stdout) as {
      accounts: { byState: Record<string, number> };
      moved: { copied: number; bytes: number; busySeconds: number };
      smtpByDay: Array<{ source: number; destination: number }>;
    };
    assert.deepEqual(prog.accounts.byState, {
      unknown: 2,
      captured: 1,
      transferring: 0,
      migrated: 1,
      failed: 0,
      excluded: 0,
    });
    assert.deepEqual([prog.moved.copied, prog.moved.bytes, prog.moved.busySeconds], [2, 1200, 10]);
    assert.equal(prog.smtpByDay.length, 1, 'only the day with mail in the last 24 h');

    const bad = await cli(['report', 'progress', '-c', config, '--since', 'last tuesday']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /--since "last tuesday" is neither/);
  });

  it('while another process owns the store: reads work, changes fail with the lock message', async () => {
    holder = spawn(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'test/support/state-writer.ts'), 'hold', state],
      {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    await new Promise<void>((ready, fail) => {
      holder!.stdout!.on('data', (b: Buffer) => b.toString().includes('ready') && ready());
      holder!.once('exit', (code) => fail(new Error(`state-writer exited ${code}`)));
    });
    const list = await cli(['accounts', 'list', '-c', config, '--json']);
    assert.equal(list.code, 0, list.stderr);
    assert.equal((JSON.parse(list.stdout) as unknown[]).length, 4);
    const rep = await cli(['report', 'progress', '-c', config, '--json']);
    assert.equal(rep.code, 0, rep.stderr);

    const ex = await cli(['accounts', 'exclude', 'carol@example.org', '-c', config]);
    assert.equal(ex.code, 1);
    assert.match(
      ex.stderr,
      new RegExp(
        `^error: another autoport process \\(pid ${holder.pid}\\) owns ${state.replace(/[.]/g, '\\.')}`,
      ),
    );
    assert.match(
      ex.stderr,
      /try: while `autoport proxy` runs, accounts changes go through its control socket/,
    );
    const json = await cli(['accounts', 'retry', 'carol@example.org', '-c', config, '--json']);
    assert.equal(JSON.parse(json.stdout).error.code, 'ESTORELOCKED');

    process.kill(holder.pid!, 'SIGKILL');
    await new Promise((r) => holder!.once('exit', r));
  });
});
