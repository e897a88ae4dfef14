/**
 * Benchmark of the JSON state store (snapshot + journal) against the whole-file store it
 * replaced, in one run on the same accounts and the same disk:
 *
 * - load: open the store (stream the snapshot, replay the journal) vs the old load
 *   (JSON.parse of the whole file, records frozen);
 * - capture: what a first login waits for, update() + flush(), with CONCURRENCY captures
 *   at a time (a login storm), after a warm-up round: journal append + fdatasync vs a
 *   coalesced whole-file save (temp file + fsync + rename, with the old per-record line cache);
 * - the same captures while a compaction runs, and the compaction itself;
 * - memory of the store alone, in a fresh process.
 *
 * Prints a table and one JSON line; run with `npm run bench:state`. Env: BENCH_ACCOUNTS
 * (default 100000), BENCH_ROUNDS (loads, default 3), BENCH_CAPTURES (default 2000; the
 * baseline does a quarter, each of its saves rewrites the whole file), BENCH_DIR (default
 * the system temp dir: put it on the disk the state will live on).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { writeFileAtomic } from '../src/core/state/atomic-file.js';
import { generateKeyFile, loadKeyring, seal, type Keyring } from '../src/core/state/crypto.js';
import { openJsonStore } from '../src/core/state/json-store.js';
import {
  COMPACT_JOURNAL_SHARE,
  COMPACT_MIN_JOURNAL_BYTES,
} from '../src/core/state/store-limits.js';
import { deepFreeze } from '../src/core/state/records.js';
import { addLoadedRecord } from '../src/core/state/snapshot.js';
import type {
  AccountRecord,
  AccountState,
  FolderProgress,
  SealedSecret,
} from '../src/core/state/types.js';

const ACCOUNTS = Number(process.env.BENCH_ACCOUNTS ?? 100_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CAPTURES = Number(process.env.BENCH_CAPTURES ?? 2000);
const CONCURRENCY = 50;
/** A whole-file load past this would be one string over V8's limit: the baseline stops. */
const BASELINE_MAX_BYTES = 400 << 20;

setFlagsFromString('--expose-gc');
/** Collect between phases, so one phase's garbage is not paid for by the next one's figures. */
const gc = runInNewContext('gc') as () => void;

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

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))] ?? NaN;
}

function median(xs: number[]): number {
  return percentile(xs, 50);
}

async function timed<T>(fn: () => Promise<T> | T): Promise<[number, T]> {
  const t0 = performance.now();
  const v = await fn();
  return [performance.now() - t0, v];
}

/** Longest event-loop stall while `fn` runs: what a proxied session would feel. */
async function withLoopDelay<T>(fn: () => Promise<T>): Promise<[number, number, T]> {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  const [ms, v] = await timed(fn);
  h.disable();
  return [ms, h.max / 1e6, v];
}

/** What a capture does to the store, without the sealing (the same for both). */
interface CaptureTarget {
  update(address: string, fn: (r: AccountRecord) => void): unknown;
  flush(): Promise<void>;
}

/**
 * `total` captures, CONCURRENCY at a time, each timed from its update() to its flush()
 * resolving: the wait a first login adds. Stops early when `until` says so.
 */
async function captureStorm(
  store: CaptureTarget,
  addresses: string[],
  secrets: SealedSecret[],
  total: number,
  until: () => boolean = () => false,
): Promise<number[]> {
  const latencies: number[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < total && !until()) {
      const i = next++;
      const t0 = performance.now();
      await store.update(addresses[i % addresses.length] as string, (r) => {
        r.state = 'captured';
        r.credentials = secrets[i % secrets.length];
        r.lastLogin = new Date().toISOString();
      });
      await store.flush();
      latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return latencies;
}

/**
 * The store before the journal, reduced to what a capture touches: every flush() waits for
 * a coalesced save of the whole file (streamed, with each record's JSON line cached for its
 * lifetime, temp file + fsync + rename), one save at a time.
 */
class WholeFileStore implements CaptureTarget {
  private readonly lines = new WeakMap<AccountRecord, string>();
  private dirty = false;
  private saving: Promise<void> | undefined;

  constructor(
    private readonly file: string,
    private readonly accounts: Map<string, AccountRecord>,
  ) {}

  update(address: string, fn: (r: AccountRecord) => void): void {
    const draft = structuredClone(this.accounts.get(address)) as AccountRecord;
    fn(draft);
    this.accounts.set(address, deepFreeze(draft));
    this.dirty = true;
  }

  async flush(): Promise<void> {
    for (;;) {
      if (this.saving) {
        await this.saving;
        continue;
      }
      if (!this.dirty) return;
      this.dirty = false;
      const records = Array.from(this.accounts.values());
      this.saving = writeFileAtomic(this.file, this.chunks(records), {
        backupPath: `${this.file}.bak`,
      }).then(() => {
        this.saving = undefined;
      });
    }
  }

  private *chunks(records: AccountRecord[]): Generator<string> {
    let buf = '{"version":1,"accounts":{';
    for (let i = 0; i < records.length; i++) {
      const rec = records[i] as AccountRecord;
      let line = this.lines.get(rec);
      if (line === undefined) {
        line = `${JSON.stringify(rec.address)}:${JSON.stringify(rec)}`;
        this.lines.set(rec, line);
      }
      buf += i === 0 ? `\n${line}` : `,\n${line}`;
      if (buf.length >= 1 << 20) {
        yield buf;
        buf = '';
      }
    }
    yield `${buf}\n}}\n`;
  }
}

/** The old load: the whole file as one string, one JSON.parse, each record checked and frozen. */
function wholeFileLoad(file: string): Map<string, AccountRecord> {
  const doc = JSON.parse(readFileSync(file, 'utf8')) as { accounts: Record<string, unknown> };
  const map = new Map<string, AccountRecord>();
  const ctx = { corrupt: (d: string) => new Error(d) };
  for (const [k, r] of Object.entries(doc.accounts)) addLoadedRecord(map, k, r, ctx);
  return map;
}

const mb = (b: number): number => Math.round(b / 104857.6) / 10;

/** Memory of the store alone, in a fresh process: after load, and after captures and a compaction. */
async function loadOnly(file: string): Promise<void> {
  const store = await openJsonStore(file, { saveDelayMs: 60_000 });
  const afterLoad = process.memoryUsage();
  const addresses = (await store.list({ limit: 1000 })).map((r) => r.address);
  const secret = (await store.list()).find((r) => r.credentials)?.credentials as SealedSecret;
  await captureStorm(store, addresses, [secret], 1000);
  await store.compact();
  await store.close();
  console.log(
    JSON.stringify({
      rssAfterLoadMB: mb(afterLoad.rss),
      heapAfterLoadMB: mb(afterLoad.heapUsed),
      peakRssMB: mb(process.resourceUsage().maxRSS * 1024),
    }),
  );
}

function measureStoreMemory(file: string): {
  rssAfterLoadMB: number;
  heapAfterLoadMB: number;
  peakRssMB: number;
} {
  const out = execFileSync(
    process.execPath,
    [...process.execArgv, process.argv[1] as string, '--load-only', file],
    { encoding: 'utf8', maxBuffer: 1 << 24 },
  );
  return JSON.parse(out.trim().split('\n').pop() as string) as ReturnType<
    typeof measureStoreMemory
  >;
}

const r1 = (x: number): number => Math.round(x * 10) / 10;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), 'autoport-bench-'));
  const file = join(dir, 'state.json');
  try {
    const keyPath = join(dir, 'key');
    await generateKeyFile(keyPath);
    const keyring = loadKeyring(keyPath);
    const secrets = Array.from({ length: 16 }, (_, i) => seal(keyring, `pw-${i}`, `x${i}@y`));
    // Logins come for any account; spread them over the whole store.
    const addresses = Array.from(
      { length: 4096 },
      (_, i) => `user${(i * 7919) % ACCOUNTS}@dept${((i * 7919) % ACCOUNTS) % 40}.example.org`,
    );

    // Build the store as an import would: every record into the journal, then compacted.
    // In a function of its own, so the store is garbage before the loads below.
    const build = async (): Promise<[number, number, number]> => {
      const store = await openJsonStore(file, { saveDelayMs: 60_000 });
      // Records are made one at a time: at 1,000,000 a second copy would not fit in the heap.
      const [ms] = await timed(async () => {
        for (let i = 0; i < ACCOUNTS; i++) {
          const r = makeRecord(i, keyring);
          await store.upsert(r.address, r);
        }
        await store.flush();
      });
      const [compactMs, stall] = await withLoopDelay(() => store.compact());
      await store.close();
      return [ms, compactMs, stall];
    };
    const [importMs, firstCompactMs, firstCompactStall] = await build();
    const bytes = statSync(file).size;

    gc();
    const load: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const [ms, s] = await timed(() => openJsonStore(file, { saveDelayMs: 60_000 }));
      load.push(ms);
      const n = await s.count();
      if (n !== ACCOUNTS) throw new Error(`loaded ${n} accounts`);
      await s.close();
      gc();
    }

    // Captures: the journal, then the journal while a compaction runs.
    const store = await openJsonStore(file, { saveDelayMs: 100, compactMinBytes: Infinity });
    // A warm-up round, not counted: the first appends compile the code they run through.
    await captureStorm(store, addresses, secrets, CONCURRENCY * 4);
    gc();
    const capture = await captureStorm(store, addresses, secrets, CAPTURES);
    let compacting = true;
    const [compactMs, compactStall, during] = await withLoopDelay(async () => {
      const c = store.compact().finally(() => (compacting = false));
      const l = await captureStorm(store, addresses, secrets, CAPTURES, () => !compacting);
      await c;
      return l;
    });
    // The worst load: a journal just short of its compaction threshold, replayed over the
    // snapshot (read by a reader without the lock, which loads the same way).
    const threshold = Math.max(COMPACT_MIN_JOURNAL_BYTES, bytes * COMPACT_JOURNAL_SHARE);
    for (let i = 0; store.status().journalBytes < threshold; i++) {
      const address = addresses[i % addresses.length] as string;
      await store.update(address, (r) => void (r.lastSeen = new Date(i).toISOString()));
      if (i % 1000 === 999) await store.flush();
    }
    await store.flush();
    const journalMB = r1(store.status().journalBytes / 1048576);
    gc();
    const [loadFullJournalMs, reader] = await timed(() => openJsonStore(file, { readOnly: true }));
    await reader.close();
    await store.close();
    gc();

    // Baseline: the whole-file store on the same accounts and disk.
    const baseLoad: number[] = [];
    let baseCapture: number[] = [];
    if (bytes <= BASELINE_MAX_BYTES) {
      let baseAccounts: Map<string, AccountRecord> | undefined;
      for (let round = 0; round < ROUNDS; round++) {
        baseAccounts = undefined;
        gc();
        const [ms, m] = await timed(() => wholeFileLoad(file));
        baseLoad.push(ms);
        baseAccounts = m;
      }
      const base = new WholeFileStore(join(dir, 'whole-file.json'), baseAccounts!);
      await base.flush();
      gc();
      baseCapture = await captureStorm(base, addresses, secrets, Math.ceil(CAPTURES / 4));
      baseAccounts = undefined;
      gc();
    }

    const mem = measureStoreMemory(file);
    const result = {
      accounts: ACCOUNTS,
      concurrency: CONCURRENCY,
      dir,
      fileMB: r1(bytes / 1048576),
      importMs: r1(importMs),
      firstCompactMs: r1(firstCompactMs),
      firstCompactMaxStallMs: r1(firstCompactStall),
      loadMs: r1(median(load)),
      loadWithJournalMs: r1(loadFullJournalMs),
      journalMB,
      baselineLoadMs: r1(median(baseLoad)),
      captures: capture.length,
      captureP50Ms: r1(percentile(capture, 50)),
      captureP99Ms: r1(percentile(capture, 99)),
      captureMaxMs: r1(Math.max(...capture)),
      compactMs: r1(compactMs),
      compactMaxStallMs: r1(compactStall),
      capturesDuringCompaction: during.length,
      captureDuringCompactP50Ms: r1(percentile(during, 50)),
      captureDuringCompactP99Ms: r1(percentile(during, 99)),
      baselineCaptures: baseCapture.length,
      baselineCaptureP50Ms: r1(percentile(baseCapture, 50)),
      baselineCaptureP99Ms: r1(percentile(baseCapture, 99)),
      storeRssAfterLoadMB: mem.rssAfterLoadMB,
      storeHeapAfterLoadMB: mem.heapAfterLoadMB,
      storePeakRssMB: mem.peakRssMB,
      benchPeakRssMB: r1(process.resourceUsage().maxRSS / 1024),
      node: process.version,
    };
    const rows: [string, string, string][] = [
      ['snapshot size', `${result.fileMB} MB`, ''],
      ['load', `${result.loadMs} ms`, `whole file: ${result.baselineLoadMs} ms`],
      [
        'load, journal at its threshold',
        `${result.loadWithJournalMs} ms`,
        `${result.journalMB} MB of journal replayed`,
      ],
      [
        `capture p50 / p99 (${CONCURRENCY} at a time)`,
        `${result.captureP50Ms} / ${result.captureP99Ms} ms`,
        `whole file: ${result.baselineCaptureP50Ms} / ${result.baselineCaptureP99Ms} ms`,
      ],
      [
        'capture p50 / p99, during compaction',
        `${result.captureDuringCompactP50Ms} / ${result.captureDuringCompactP99Ms} ms`,
        `${result.capturesDuringCompaction} captures`,
      ],
      [
        'compaction',
        `${result.compactMs} ms`,
        `max event-loop stall ${result.compactMaxStallMs} ms; first: ${result.firstCompactMs} ms`,
      ],
      [`import ${ACCOUNTS} accounts (journal)`, `${result.importMs} ms`, ''],
      [
        'RSS, store alone',
        `${result.storeRssAfterLoadMB} MB`,
        `heap ${result.storeHeapAfterLoadMB} MB after load; peak ${result.storePeakRssMB} MB with captures + compaction (fresh process)`,
      ],
      ['peak RSS, this bench', `${result.benchPeakRssMB} MB`, 'holds the baseline copy too'],
    ];
    const w0 = Math.max(...rows.map((r) => r[0].length));
    const w1 = Math.max(...rows.map((r) => r[1].length));
    console.log(`state store, ${ACCOUNTS} accounts, ${dir} (${process.version})`);
    for (const [a, b, c] of rows) console.log(`  ${a.padEnd(w0)}  ${b.padStart(w1)}  ${c}`);
    console.log(JSON.stringify(result));
  } finally {
    if (process.env.BENCH_KEEP) console.error(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--load-only') await loadOnly(process.argv[3] as string);
else await main();
