/**
 * One writer of the state: the built `autoport proxy` owns the store, and the built
 * `autoport accounts ...` commands change accounts through its control socket while it
 * runs (the lock stays the proxy's), then through the store itself once it has stopped.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connectControl, ControlRequestError } from '../../src/core/control/client.js';
import { generateKeyFile } from '../../src/core/state/crypto.js';
import { openJsonStore } from '../../src/core/state/json-store.js';
import { ensureBuilt, ROOT, runCli, writeOfflineConfig } from '../support/cli.js';

const cli = (args: string[]) => runCli(args, { env: { AUTOPORT_CONFIG: '' } });
const SEALED = { kid: 'k1', iv: 'aXY=', tag: 'dGFn', data: 'c2VjcmV0' };

async function readState(state: string, address: string) {
  const store = await openJsonStore(state, { readOnly: true });
  try {
    return await store.get(address);
  } finally {
    await store.close();
  }
}

describe('accounts commands and the running proxy (built CLI)', { timeout: 120_000 }, () => {
  let dir: string;
  let config: string;
  let state: string;
  let socket: string;
  let proxy: ChildProcess | undefined;
  let proxyOut = '';

  before(async () => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'ap-control-proxy-'));
    state = join(dir, 'state.json');
    socket = join(dir, 'autoport.sock');
    await generateKeyFile(join(dir, 'autoport.key'));
    config = writeOfflineConfig(dir, [
      'listen:',
      '  imap: 127.0.0.1:0',
      `keyFile: ${join(dir, 'autoport.key')}`,
    ]);
    const store = await openJsonStore(state, { saveDelayMs: 1 });
    await store.upsert('bob@example.org', {
      state: 'failed',
      credentials: SEALED,
      reason: 'quota exceeded',
      attempts: 3,
    });
    await store.upsert('carol@example.org', { state: 'unknown' });
    await store.close();

    proxy = spawn(
      process.execPath,
      [
        join(ROOT, 'bin/run.js'),
        'proxy',
        '-c',
        config,
        '--no-workers',
        '--log-format',
        'json',
        '--grace',
        '1',
      ],
      {
        cwd: ROOT,
        env: { ...process.env, AUTOPORT_CONFIG: '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    proxy.stderr!.setEncoding('utf8').on('data', (d: string) => (proxyOut += d));
    await new Promise<void>((ready, fail) => {
      proxy!.stdout!.setEncoding('utf8').on('data', (d: string) => {
        proxyOut += d;
        if (proxyOut.includes('autoport proxy listening')) ready();
      });
      proxy!.once('exit', (code) => fail(new Error(`proxy exited ${code}: ${proxyOut}`)));
    });
  });

  after(async () => {
    if (proxy && proxy.exitCode === null) {
      proxy.kill('SIGKILL');
      await new Promise((r) => proxy!.once('exit', r));
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('changes the live state through the socket while the proxy holds the lock', async () => {
    const lockBefore = readFileSync(`${state}.lock`, 'utf8');
    assert.match(lockBefore, new RegExp(`"pid":\\s*${proxy!.pid}\\b`));

    const ex = await cli([
      'accounts',
      'exclude',
      'carol@example.org',
      '-c',
      config,
      '--reason',
      'shared',
    ]);
    assert.equal(ex.code, 0, ex.stderr);
    assert.equal(
      ex.stdout.trim(),
      'carol@example.org excluded: the gateway keeps it on the source',
    );
    // Had the command opened the store it would have failed on the proxy's lock.
    assert.equal(readFileSync(`${state}.lock`, 'utf8'), lockBefore);

    // The proxy's own store has it (transfer.start reads the live record) ...
    const c = await connectControl(socket);
    try {
      assert.equal(c.hello.pid, proxy!.pid);
      const err = await c.call('transfer.start', { address: 'carol@example.org' }).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(err instanceof ControlRequestError);
      assert.equal(err.code, 'EACCOUNTSTATE');
      assert.match(err.message, /^carol@example\.org is excluded/);
    } finally {
      c.close();
    }
    // ... and it was saved before the command returned.
    const saved = await readState(state, 'carol@example.org');
    assert.equal(saved?.state, 'excluded');
    assert.equal(saved?.reason, 'shared');
  });

  it("retries, imports and reports errors through the socket with the store path's shapes", async () => {
    const retry = await cli(['accounts', 'retry', 'bob@example.org', '-c', config, '--json']);
    assert.equal(retry.code, 0, retry.stderr);
    assert.deepEqual(JSON.parse(retry.stdout), {
      address: 'bob@example.org',
      before: 'failed',
      after: 'captured',
      changed: true,
      message: 'bob@example.org back to captured: the worker pool retries it',
    });

    const list = join(dir, 'all.txt');
    writeFileSync(list, 'bob@example.org\ndave@example.org\nDAVE@example.org\n# comment\n');
    const imp = await cli(['accounts', 'import', list, '-c', config, '--json']);
    assert.equal(imp.code, 0, imp.stderr);
    assert.deepEqual(JSON.parse(imp.stdout), {
      added: 1,
      marked: 1,
      unchanged: 0,
      duplicates: 1,
      total: 2,
    });
    assert.equal((await readState(state, 'dave@example.org'))?.imported, true);

    const missing = await cli(['accounts', 'include', 'zed@example.org', '-c', config, '--json']);
    assert.equal(missing.code, 1);
    assert.equal(JSON.parse(missing.stdout).error.code, 'ENOACCOUNT');

    // --no-workers: asking the proxy to move an account now says why it cannot
    const c = await connectControl(socket);
    try {
      await assert.rejects(c.call('transfer.start', { address: 'bob@example.org' }), {
        code: 'ENOWORKERS',
      });
    } finally {
      c.close();
    }
  });

  it('changes the state file itself once the proxy has stopped', async () => {
    proxy!.kill('SIGTERM');
    const code = await new Promise((r) => proxy!.once('exit', r));
    assert.equal(code, 0, proxyOut);
    assert.equal(existsSync(socket), false, 'the proxy removed its socket');
    assert.equal(existsSync(`${state}.lock`), false, 'the proxy released the lock');

    const inc = await cli(['accounts', 'include', 'carol@example.org', '-c', config]);
    assert.equal(inc.code, 0, inc.stderr);
    assert.match(inc.stdout, /carol@example\.org included/);
    assert.equal((await readState(state, 'carol@example.org'))?.state, 'unknown');
  });
});
