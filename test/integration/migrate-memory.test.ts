/**
 * Bounded memory: a 50 MB message and a 20,000-message folder are migrated by a separate
 * process whose peak RSS (VmHWM from /proc) must stay under 250 MB, and arrive intact.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  bulkCorpus,
  loadBulk,
  openImap,
  makeMessage,
  makeTempDir,
  removeDir,
  startDovecot,
  type Corpus,
  type DovecotInstance,
} from '../support/index.js';
import { assertSameMail, labConfigFor } from './migrate-support.js';

const alice = { user: 'alice@example.org', password: 'alice-secret' };
const master = { user: 'admin', password: 'master-secret' };
const DRIVER = join(import.meta.dirname, 'migrate-driver.ts');
const LIMIT_MB = 250;

/** Bundle the driver with esbuild (tsx's own compiler) next to node_modules so packages resolve. */
async function bundleDriver(): Promise<string> {
  const { build } = await import('esbuild');
  const out = join(
    import.meta.dirname,
    '..',
    '..',
    'node_modules',
    '.cache',
    'autoport-test',
    `migrate-driver-${process.pid}.mjs`,
  );
  await build({
    entryPoints: [DRIVER],
    bundle: true,
    platform: 'node',
    format: 'esm',
    packages: 'external',
    outfile: out,
    logLevel: 'error',
  });
  cleanup.push(out);
  return out;
}

const cleanup: string[] = [];

function vmHwmKb(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

describe('migrate: memory stays bounded', () => {
  let src: DovecotInstance;
  let dst: DovecotInstance;
  let dir: string;
  const many = bulkCorpus({ count: 20_000, avgSize: 700, seed: 7 });
  const huge = makeMessage({ subject: 'fifty megabytes', size: 50 * 1024 * 1024, seed: 50 });
  const corpus: Corpus = {
    folders: [
      ...many.folders,
      {
        path: 'Big',
        selectable: true,
        subscribe: true,
        messages: [
          {
            key: 'size-50m',
            raw: huge,
            flags: ['\\Seen'],
            internalDate: new Date('2020-02-02T02:02:02Z'),
          },
        ],
      },
    ],
  };

  before(async () => {
    [src, dst] = await Promise.all([
      startDovecot({ name: 'mem-src', users: [alice] }),
      startDovecot({ name: 'mem-dst', users: [], master, scheme: 'SHA512-CRYPT' }),
    ]);
    dir = makeTempDir('migrate-mem');
    await loadBulk(src, alice.user, corpus);
  });
  after(async () => {
    for (const f of cleanup) rmSync(f, { force: true });
    await Promise.all([src?.stop(), dst?.stop()]);
    if (dir) removeDir(dir);
  });

  test(
    `50 MB message and 20,000 messages in one folder under ${LIMIT_MB} MB peak RSS`,
    { timeout: 180_000 },
    async () => {
      const config = labConfigFor(src, dst, dir);
      const jobFile = join(dir, 'job.json');
      writeFileSync(
        jobFile,
        JSON.stringify({ config, address: alice.user, password: alice.password, dir }),
      );
      // Run the driver as plain JavaScript, as the CLI runs from dist/: under tsx the process
      // would carry the TypeScript loader's own ~60 MB, which production never has.
      const bundle = await bundleDriver();
      const child = spawn(process.execPath, [bundle, jobFile], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      let peakKb = 0;
      const poll = setInterval(
        () => (peakKb = Math.max(peakKb, vmHwmKb(child.pid as number))),
        100,
      );
      const code = await new Promise<number | null>((resolve) =>
        child.on('exit', (c) => resolve(c)),
      );
      clearInterval(poll);
      assert.equal(code, 0, `driver failed: ${err.slice(-2000)}`);
      const result = JSON.parse(out.trim().split('\n').pop() as string) as {
        totals: { copied: number };
        verify?: { ok: boolean };
      };
      assert.equal(result.totals.copied, 20_001);
      assert.equal(result.verify?.ok, true);
      const peakMb = peakKb / 1024;
      process.stderr.write(`# migrate peak RSS ${peakMb.toFixed(0)} MB\n`);
      assert.ok(peakKb > 0, 'could not read the child RSS');
      assert.ok(peakMb < LIMIT_MB, `peak RSS ${peakMb.toFixed(0)} MB is over ${LIMIT_MB} MB`);
      // the big one byte for byte; the 20,000 by count here (the engine's own verify hashed them)
      await assertSameMail(
        { folders: corpus.folders.filter((f) => f.path === 'Big') },
        src,
        dst,
        alice,
      );
      const c = await openImap(dst, alice);
      try {
        const st = await c.status('INBOX', { messages: true });
        assert.equal(st && st.messages, 20_000);
      } finally {
        await c.logout();
      }
    },
  );
});
