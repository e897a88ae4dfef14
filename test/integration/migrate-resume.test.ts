/**
 * Interruptions: a migrate killed with SIGKILL in the middle of copying, then run again,
 * leaves the destination equal to the source with no duplicate; a source that drops the
 * connection mid-FETCH and a destination that refuses one message over its size limit
 * still get everything else copied, and the ledger says why.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseEndpoint } from '../../src/core/config/endpoint.js';
import { makeProvisioner } from '../../src/core/provision/index.js';
import { migrateAccount, type MigrateEvent } from '../../src/core/transfer/migrate-account.js';
import {
  bulkCorpus,
  findMessage,
  loadBulk,
  loadCorpus,
  makeTempDir,
  removeDir,
  standardCorpus,
  startDovecot,
  type DovecotInstance,
} from '../support/index.js';
import { startCutProxy } from './cut-proxy.js';
import {
  assertSameMail,
  labConfigFor,
  openStateAndLedger,
  readMailbox,
} from './migrate-support.js';

const alice = { user: 'alice@example.org', password: 'alice-secret' };
const req = { address: alice.user, password: alice.password };
const master = { user: 'admin', password: 'master-secret' };
const DRIVER = join(import.meta.dirname, 'migrate-driver.ts');

/** Start the driver, wait until it reported `minCopied` copies plus a random delay, SIGKILL it. */
async function runAndKill(
  jobFile: string,
  minCopied: number,
  extraDelayMs: number,
): Promise<{ killed: boolean; copied: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', DRIVER, jobFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let copied = 0;
  let stderr = '';
  return await new Promise((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      for (const m of stderr.matchAll(/progress \S+ (\d+)/g))
        copied = Math.max(copied, Number(m[1]));
      if (copied >= minCopied && !timer)
        timer = setTimeout(() => child.kill('SIGKILL'), extraDelayMs);
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (timer) clearTimeout(timer);
      if (signal === 'SIGKILL') resolve({ killed: true, copied });
      else if (code === 0) resolve({ killed: false, copied });
      else reject(new Error(`driver exited with ${code}: ${stderr.slice(-2000)}`));
    });
  });
}

describe('migrate: kill -9 in the middle, then again', () => {
  let src: DovecotInstance;
  let dst: DovecotInstance;
  let dir: string;
  const corpus = bulkCorpus({
    count: 1800,
    avgSize: 12_000,
    seed: 42,
    folders: ['INBOX', 'Archive', 'lists/dev'],
  });

  before(async () => {
    [src, dst] = await Promise.all([
      startDovecot({ name: 'kill-src', users: [alice] }),
      startDovecot({ name: 'kill-dst', users: [], master, scheme: 'SHA512-CRYPT' }),
    ]);
    dir = makeTempDir('migrate-kill');
    await loadBulk(src, alice.user, corpus);
  });
  after(async () => {
    await Promise.all([src?.stop(), dst?.stop()]);
    if (dir) removeDir(dir);
  });

  test('two kills at random points, a third run completes: equal, no duplicates', async () => {
    const config = labConfigFor(src, dst, dir);
    const jobFile = join(dir, 'job.json');
    writeFileSync(jobFile, JSON.stringify({ config, ...req, dir }));
    const kills: { killed: boolean; copied: number }[] = [];
    kills.push(
      await runAndKill(
        jobFile,
        100 + Math.floor(Math.random() * 300),
        Math.floor(Math.random() * 150),
      ),
    );
    kills.push(
      await runAndKill(
        jobFile,
        50 + Math.floor(Math.random() * 200),
        Math.floor(Math.random() * 150),
      ),
    );
    assert.ok(
      kills.some((k) => k.killed),
      `no run was killed mid-copy: ${JSON.stringify(kills)}`,
    );
    const st = await openStateAndLedger(dir);
    try {
      const result = await migrateAccount(req, {
        config,
        store: st.store,
        ledger: st.ledger,
        verify: 'all',
      });
      assert.equal(result.ok, true, JSON.stringify(result.errors));
      assert.equal(result.verify?.ok, true);
      assert.equal(result.totals.messages, 1800);
    } finally {
      await st.close();
    }
    await assertSameMail(corpus, src, dst, alice);
  });
});

describe('migrate: dropped source connection and a refused message', () => {
  let src: DovecotInstance;
  let dst: DovecotInstance;
  let dir: string;
  const corpus = standardCorpus();

  before(async () => {
    [src, dst] = await Promise.all([
      startDovecot({ name: 'fault-src', users: [alice] }),
      // the corpus's 1 MB message is over this limit
      startDovecot({
        name: 'fault-dst',
        users: [],
        master,
        scheme: 'SHA512-CRYPT',
        appendLimit: 512 * 1024,
      }),
    ]);
    dir = makeTempDir('migrate-fault');
    await loadCorpus(src, alice.user, alice.password, corpus);
  });
  after(async () => {
    await Promise.all([src?.stop(), dst?.stop()]);
    if (dir) removeDir(dir);
  });

  test('the rest is copied, the cut is retried, the ledger says why one message is missing', async () => {
    const proxy = await startCutProxy(
      { host: src.host, port: src.ports.imap },
      { afterBytes: 200_000, cuts: 1 },
    );
    const config = labConfigFor(src, dst, dir, 1);
    config.source.imap = parseEndpoint(`imap://127.0.0.1:${proxy.port}?tls=none`);
    const st = await openStateAndLedger(dir);
    const warnings: string[] = [];
    try {
      const result = await migrateAccount(req, {
        config,
        store: st.store,
        ledger: st.ledger,
        provisioner: makeProvisioner(config.destination.provision),
        onEvent: (e: MigrateEvent) => e.type === 'warning' && warnings.push(e.message),
      });
      assert.equal(proxy.cut, 1, 'the proxy cut one connection');
      assert.ok(
        warnings.some((w) => /retrying/.test(w)),
        `no retry warning: ${warnings.join('; ')}`,
      );
      const big = findMessage(corpus, 'size-1m');
      assert.equal(result.ok, false, 'a refused message makes the account not clean');
      assert.equal(result.totals.failed + result.totals.skipped, 1);
      const total = corpus.folders.reduce((n, f) => n + f.messages.length, 0);
      assert.equal(result.totals.copied, total - 1);
      assert.equal((await st.store.get(alice.user))?.state, 'failed');
      await st.ledger.flush();
      const lines = readFileSync(st.ledgerPath, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { outcome: string; reason?: string; size?: number });
      const refused = lines.filter((l) => l.outcome === 'failed' || l.outcome === 'skipped');
      assert.equal(refused.length, 1);
      assert.equal(refused[0]?.size, big.raw.length);
      assert.match(refused[0]?.reason ?? '', /LIMIT|APPENDLIMIT|too large|size/i);
    } finally {
      await st.close();
      await proxy.close();
    }
    // everything but the refused message is there, byte for byte
    const [a, b] = await Promise.all([
      readMailbox(src, alice, 'INBOX'),
      readMailbox(dst, alice, 'INBOX'),
    ]);
    const bigSize = findMessage(corpus, 'size-1m').raw.length;
    assert.deepEqual(
      b,
      a.filter((m) => m.size !== bigSize),
    );
    await assertSameMail(
      { folders: corpus.folders.filter((f) => f.path !== 'INBOX') },
      src,
      dst,
      alice,
    );
  });
});
