/**
 * Benchmark of the JSON state store at its design size (100,000 accounts) against a naive
 * baseline on the same document (JSON.parse(readFileSync) / writeFileSync(JSON.stringify),
 * no fsync, no rename). Prints a table and one JSON line; run with `npm run bench:state`.
 * Env: BENCH_ACCOUNTS (default 100000), BENCH_ROUNDS (default 3).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { generateKeyFile, loadKeyring, seal, type Keyring } from '../src/core/state/crypto.js';
import { openJsonStore } from '../src/core/state/json-store.js';
import type { AccountRecord, AccountState, FolderProgress } from '../src/core/state/types.js';

const ACCOUNTS = Number(process.env.BENCH_ACCOUNTS ?? 100_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const UPDATES = 1000;

const STATES: AccountState[] = [
  'migrated',
  'migrated',
  'migrated',
  'migrated',
  'transferring',
  'captured',
  'captured',
  'captured',
  'unknown',
  'failed',
];
const FOLDERS = ['INBOX', 'Sent', 'Drafts', 'Trash', 'Archive/2023', 'Archive/2024'];

function iso(base: number, i: number): string {
  return new Date(base + i * 61_000).toISOString();
}

function makeRecord(i: number, keyring: Keyring): AccountRecord {
  const address = `user${i}@dept${i % 40}.example.org`;
  const state = STATES[i % STATES.length] as AccountState;
  const t = Date.UTC(2025, 0, 1);
  const rec: AccountRecord = {
    address,
    state,
    firstSeen: iso(t, i),
    lastSeen: iso(t + 86_400_000, i),
    lastLogin: iso(t + 86_400_000, i),
    updatedAt: iso(t + 2 * 86_400_000, i),
    errors: [],
    folders: {},
  };
  if (state !== 'unknown') {
    rec.credentials = seal(keyring, `${address}\u0000pw-${i.toString(36)}-Xy9!`, address);
  }
  if (state === 'failed') {
    rec.attempts = 3;
    rec.reason = 'destination refused APPEND';
    rec.errors.push({ at: iso(t, i), cause: 'EAPPEND', detail: 'NO [OVERQUOTA] Quota exceeded' });
  }
  if (state === 'migrated' || state === 'transferring') {
    let total = 0;
    for (const [n, name] of FOLDERS.slice(0, 3 + (i % 4)).entries()) {
      const messages = 50 + ((i * 7 + n * 13) % 3000);
      const fp: FolderProgress = {
        source: name,
        destination: name,
        uidValidity: 1_600_000_000 + n,
        destUidValidity: 1_700_000_000 + n,
        lastUid: messages + 17,
        messages,
        bytes: messages * 48_000,
        copied: messages,
        skipped: 0,
        failed: 0,
        uidMap: `state-data/${address}/${name.replace('/', '%2f')}-0badf00d.json`,
        updatedAt: iso(t + 2 * 86_400_000, i),
      };
      rec.folders[name] = fp;
      total += messages;
    }
    rec.transfer = {
      startedAt: iso(t + 86_400_000, i),
      finishedAt: state === 'migrated' ? iso(t + 90_000_000, i) : undefined,
      messages: total,
      bytes: total * 48_000,
      copied: total,
      skipped: 0,
      failed: 0,
    };
  }
  return rec;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

async function timed<T>(fn: () => Promise<T> | T): Promise<[number, T]> {
  const t0 = performance.now();
  const v = await fn();
  return [performance.now() - t0, v];
}

/** Longest event-loop stall while `fn` runs: what a proxied session would feel. */
async function withLoopDelay(fn: () => Promise<unknown>): Promise<[number, number]> {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  const [ms] = await timed(fn);
  h.disable();
  return [ms, h.max / 1e6];
}

/** Memory of the store alone, in a fresh process: after load, and after a save built the line cache. */
async function loadOnly(file: string): Promise<void> {
  const store = await openJsonStore(file, { saveDelayMs: 60_000 });
  const afterLoad = process.memoryUsage().rss;
  const first = store.list()[0];
  if (first) store.update(first.address, (r) => void (r.lastSeen = new Date().toISOString()));
  await store.flush();
  const afterSave = process.memoryUsage().rss;
  await store.close();
  const mb = (b: number): number => Math.round(b / 104857.6) / 10;
  console.log(
    JSON.stringify({
      rssAfterLoadMB: mb(afterLoad),
      rssAfterSaveMB: mb(afterSave),
      peakRssMB: mb(process.resourceUsage().maxRSS * 1024),
    }),
  );
}

function measureStoreMemory(file: string): {
  rssAfterLoadMB: number;
  rssAfterSaveMB: number;
  peakRssMB: number;
} {
  const out = execFileSync(
    process.execPath,
    [...process.execArgv, process.argv[1] as string, '--load-only', file],
    {
      encoding: 'utf8',
    },
  );
  return JSON.parse(out.trim().split('\n').pop() as string) as ReturnType<
    typeof measureStoreMemory
  >;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'autoport-bench-'));
  const file = join(dir, 'state.json');
  try {
    const keyPath = join(dir, 'key');
    await generateKeyFile(keyPath);
    const keyring = loadKeyring(keyPath);
    const records = Array.from({ length: ACCOUNTS }, (_, i) => makeRecord(i, keyring));

    // Build the store the way the gateway would; its first save serialises every record.
    let store = await openJsonStore(file, { saveDelayMs: 60_000 });
    const [insertMs] = await timed(() => {
      for (const r of records) store.upsert(r.address, r);
    });
    const [firstSaveMs, firstSaveStall] = await withLoopDelay(() => store.flush());
    const bytes = statSync(file).size;

    // Steady state: a batch of updates, then a save that reuses the unchanged records' JSON.
    const update: number[] = [];
    const warmSave: number[] = [];
    const warmStall: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const [u] = await timed(() => {
        for (let j = 0; j < UPDATES; j++) {
          const idx = (round * 7919 + j * 97) % ACCOUNTS;
          store.update(records[idx]!.address, (r) => {
            r.lastSeen = new Date().toISOString();
            r.attempts = (r.attempts ?? 0) + 1;
            const inbox = r.folders.INBOX;
            if (inbox) inbox.copied += 1;
          });
        }
      });
      update.push(u);
      const [w, ws] = await withLoopDelay(() => store.flush());
      warmSave.push(w);
      warmStall.push(ws);
    }
    await store.close();

    // Restart: load, and the first save after a load (no cached lines yet).
    const load: number[] = [];
    let coldSaveMs = NaN;
    let coldStall = NaN;
    for (let round = 0; round < ROUNDS; round++) {
      const [loadMs, s] = await timed(() => openJsonStore(file, { saveDelayMs: 60_000 }));
      store = s;
      load.push(loadMs);
      if (store.count() !== ACCOUNTS) throw new Error(`loaded ${store.count()} accounts`);
      if (round === ROUNDS - 1) {
        store.update(records[0]!.address, (r) => void (r.lastSeen = new Date().toISOString()));
        [coldSaveMs, coldStall] = await withLoopDelay(() => store.flush());
      }
      await store.close();
    }

    // Baseline: the naive way, same document, no fsync, no atomic rename.
    const baseFile = join(dir, 'baseline.json');
    const baseLoad: number[] = [];
    const baseSave: number[] = [];
    let doc: unknown;
    for (let round = 0; round < ROUNDS; round++) {
      const [l, d] = await timed(() => JSON.parse(readFileSync(file, 'utf8')) as unknown);
      baseLoad.push(l);
      doc = d;
      const [w] = await timed(() => writeFileSync(baseFile, JSON.stringify(doc)));
      baseSave.push(w);
    }

    const mem = measureStoreMemory(file);
    const r1 = (x: number): number => Math.round(x * 10) / 10;
    const result = {
      accounts: ACCOUNTS,
      rounds: ROUNDS,
      fileMB: r1(bytes / 1048576),
      insertMs: r1(insertMs),
      firstSaveMs: r1(firstSaveMs),
      firstSaveMaxStallMs: r1(firstSaveStall),
      loadMs: r1(median(load)),
      coldSaveMs: r1(coldSaveMs),
      coldSaveMaxStallMs: r1(coldStall),
      update1000Ms: r1(median(update)),
      warmSaveMs: r1(median(warmSave)),
      warmSaveMaxStallMs: r1(median(warmStall)),
      baselineLoadMs: r1(median(baseLoad)),
      baselineSaveMs: r1(median(baseSave)),
      loadRatio: r1(median(load) / median(baseLoad)),
      coldSaveRatio: r1(coldSaveMs / median(baseSave)),
      warmSaveRatio: r1(median(warmSave) / median(baseSave)),
      storeRssAfterLoadMB: mem.rssAfterLoadMB,
      storeRssAfterSaveMB: mem.rssAfterSaveMB,
      storePeakRssMB: mem.peakRssMB,
      benchPeakRssMB: r1(process.resourceUsage().maxRSS / 1024),
      node: process.version,
    };
    const rows: [string, string, string][] = [
      ['file size', `${result.fileMB} MB`, ''],
      [
        'load (open + parse + check)',
        `${result.loadMs} ms`,
        `baseline ${result.baselineLoadMs} ms, x${result.loadRatio}`,
      ],
      [
        'save, first after load',
        `${result.coldSaveMs} ms`,
        `baseline ${result.baselineSaveMs} ms, x${result.coldSaveRatio}; max stall ${result.coldSaveMaxStallMs} ms`,
      ],
      [`update ${UPDATES} accounts (memory)`, `${result.update1000Ms} ms`, ''],
      [
        `save after ${UPDATES} updates`,
        `${result.warmSaveMs} ms`,
        `x${result.warmSaveRatio} of baseline; max stall ${result.warmSaveMaxStallMs} ms`,
      ],
      [`insert ${ACCOUNTS} + first save`, `${result.insertMs} + ${result.firstSaveMs} ms`, ''],
      [
        'RSS, store alone',
        `${result.storeRssAfterSaveMB} MB`,
        `after load ${result.storeRssAfterLoadMB} MB, peak ${result.storePeakRssMB} MB (fresh process)`,
      ],
      [
        'peak RSS, this bench',
        `${result.benchPeakRssMB} MB`,
        'holds the generated records and the baseline copy too',
      ],
    ];
    const w0 = Math.max(...rows.map((r) => r[0].length));
    const w1 = Math.max(...rows.map((r) => r[1].length));
    console.log(
      `state store, ${ACCOUNTS} accounts, median of ${ROUNDS} rounds (${process.version})`,
    );
    for (const [a, b, c] of rows) console.log(`  ${a.padEnd(w0)}  ${b.padStart(w1)}  ${c}`);
    console.log(JSON.stringify(result));
  } finally {
    if (process.env.BENCH_KEEP) console.error(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--load-only') await loadOnly(process.argv[3] as string);
else await main();
