/**
 * The JSON state store (snapshot + journal) in bench:state, against the whole-file store
 * it replaced, on the same accounts and disk:
 *
 * - load: open the store (stream the snapshot, replay the journal) vs the old load
 *   (JSON.parse of the whole file, records frozen);
 * - capture: what a first login waits for, update() + flush(), CONCURRENCY at a time,
 *   after a warm-up round: journal append + fdatasync vs a coalesced whole-file save;
 * - the same captures while a compaction runs, and the compaction itself;
 * - memory of the store alone, in a fresh process.
 *
 * At the large size the snapshot is written directly (an import through the journal would
 * take minutes), and the store opened in a fresh process (state-probe.ts); past
 * MAX_JSON_ACCOUNTS it must refuse to open, and how long it took to say so is measured.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { open as openFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../src/core/state/atomic-file.js';
import { loadKeyring, type Keyring } from '../src/core/state/crypto.js';
import { createJournal, journalPath } from '../src/core/state/journal.js';
import { openJsonStore } from '../src/core/state/json-store.js';
import { deepFreeze } from '../src/core/state/records.js';
import { addLoadedRecord, SNAPSHOT_VERSION } from '../src/core/state/snapshot.js';
import {
  COMPACT_JOURNAL_SHARE,
  COMPACT_MIN_JOURNAL_BYTES,
} from '../src/core/state/store-limits.js';
import type { AccountRecord } from '../src/core/state/types.js';
import {
  addressOf,
  captureStorm,
  makeTemplates,
  recordJson,
  makeRecord,
  mb,
  median,
  percentile,
  r1,
  SOLO_CAPTURES,
  WARM_CAPTURES,
  spreadAddresses,
  timed,
  withLoopDelay,
  type CaptureTarget,
} from './state-records.js';

/** A whole-file load past this would be one string over V8's limit: the baseline stops. */
const BASELINE_MAX_BYTES = 400 << 20;

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

/** Memory of the store alone, in a fresh process: after load, and after captures and a compaction. */
export async function loadOnly(file: string, keyFile: string): Promise<void> {
  const store = await openJsonStore(file, { saveDelayMs: 60_000 });
  const afterLoad = process.memoryUsage();
  const addresses = (await store.list({ limit: 1000 })).map((r) => r.address);
  await captureStorm(store, addresses, loadKeyring(keyFile), 1000);
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

interface StoreMemory {
  rssAfterLoadMB: number;
  heapAfterLoadMB: number;
  peakRssMB: number;
}

function measureStoreMemory(file: string, keyFile: string): StoreMemory {
  const out = execFileSync(
    process.execPath,
    [...process.execArgv, process.argv[1] as string, '--load-only', file, keyFile],
    { encoding: 'utf8', maxBuffer: 1 << 24 },
  );
  return JSON.parse(out.trim().split('\n').pop() as string) as StoreMemory;
}

export interface JsonSetup {
  dir: string;
  keyring: Keyring;
  keyFile: string;
  accounts: number;
  rounds: number;
  captures: number;
  gc: () => void;
}

/** Build the store as an import would: every record into the journal, then compacted. */
async function build(file: string, s: JsonSetup): Promise<[number, number, number]> {
  const store = await openJsonStore(file, { saveDelayMs: 60_000 });
  // Records are made one at a time: at 1,000,000 a second copy would not fit in the heap.
  const [ms] = await timed(async () => {
    for (let i = 0; i < s.accounts; i++) {
      const r = makeRecord(i, s.keyring);
      await store.upsert(r.address, r);
    }
    await store.flush();
  });
  const [compactMs, stall] = await withLoopDelay(() => store.compact());
  await store.close();
  return [ms, compactMs, stall];
}

async function loads(file: string, s: JsonSetup): Promise<number[]> {
  const load: number[] = [];
  for (let round = 0; round < s.rounds; round++) {
    const [ms, st] = await timed(() => openJsonStore(file, { saveDelayMs: 60_000 }));
    load.push(ms);
    const n = await st.count();
    if (n !== s.accounts) throw new Error(`loaded ${n} accounts`);
    await st.close();
    s.gc();
  }
  return load;
}

/** Captures, then captures during a compaction, then the load with a full journal. */
async function captures(file: string, bytes: number, s: JsonSetup) {
  const addresses = spreadAddresses(s.accounts);
  const store = await openJsonStore(file, { saveDelayMs: 100, compactMinBytes: Infinity });
  await captureStorm(store, addresses, s.keyring, WARM_CAPTURES); // warm-up, not counted
  const solo = await captureStorm(store, addresses, s.keyring, SOLO_CAPTURES, undefined, 1);
  s.gc();
  const [captureMs, capture] = await timed(() =>
    captureStorm(store, addresses, s.keyring, s.captures),
  );
  let compacting = true;
  const [compactMs, compactStall, during] = await withLoopDelay(async () => {
    const c = store.compact().finally(() => (compacting = false));
    const l = await captureStorm(store, addresses, s.keyring, s.captures, () => !compacting);
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
  s.gc();
  const [loadFullJournalMs, reader] = await timed(() => openJsonStore(file, { readOnly: true }));
  await reader.close();
  await store.close();
  s.gc();
  return {
    solo,
    capture,
    captureMs,
    compactMs,
    compactStall,
    during,
    journalMB,
    loadFullJournalMs,
  };
}

/** The whole-file store on the same accounts and disk: its loads and its captures. */
async function baseline(file: string, s: JsonSetup): Promise<[number[], number[]]> {
  const baseLoad: number[] = [];
  let baseAccounts: Map<string, AccountRecord> | undefined;
  for (let round = 0; round < s.rounds; round++) {
    baseAccounts = undefined;
    s.gc();
    const [ms, m] = await timed(() => wholeFileLoad(file));
    baseLoad.push(ms);
    baseAccounts = m;
  }
  const base = new WholeFileStore(join(s.dir, 'whole-file.json'), baseAccounts!);
  await base.flush();
  s.gc();
  const addresses = spreadAddresses(s.accounts);
  // a quarter of the captures: each of its saves rewrites the whole file
  const baseCapture = await captureStorm(base, addresses, s.keyring, Math.ceil(s.captures / 4));
  baseAccounts = undefined;
  s.gc();
  return [baseLoad, baseCapture];
}

export type JsonResult = Awaited<ReturnType<typeof benchJson>>;

/** The JSON store at `accounts`, everything measured; the state file stays for the gateway. */
export async function benchJson(file: string, s: JsonSetup) {
  const [importMs, firstCompactMs, firstCompactStall] = await build(file, s);
  const bytes = statSync(file).size;
  s.gc();
  const load = await loads(file, s);
  const c = await captures(file, bytes, s);
  const [baseLoad, baseCapture] = bytes <= BASELINE_MAX_BYTES ? await baseline(file, s) : [[], []];
  const mem = measureStoreMemory(file, s.keyFile);
  return {
    accounts: s.accounts,
    fileMB: r1(bytes / 1048576),
    importMs: r1(importMs),
    firstCompactMs: r1(firstCompactMs),
    firstCompactMaxStallMs: r1(firstCompactStall),
    loadMs: r1(median(load)),
    loadWithJournalMs: r1(c.loadFullJournalMs),
    journalMB: c.journalMB,
    baselineLoadMs: r1(median(baseLoad)),
    soloP50Ms: r1(percentile(c.solo, 50)),
    soloP99Ms: r1(percentile(c.solo, 99)),
    captures: c.capture.length,
    captureP50Ms: r1(percentile(c.capture, 50)),
    captureP99Ms: r1(percentile(c.capture, 99)),
    captureMaxMs: r1(Math.max(...c.capture)),
    capturesPerSec: Math.round((c.capture.length * 1000) / c.captureMs),
    compactMs: r1(c.compactMs),
    compactMaxStallMs: r1(c.compactStall),
    capturesDuringCompaction: c.during.length,
    captureDuringCompactP50Ms: r1(percentile(c.during, 50)),
    captureDuringCompactP99Ms: r1(percentile(c.during, 99)),
    baselineCaptures: baseCapture.length,
    baselineCaptureP50Ms: r1(percentile(baseCapture, 50)),
    baselineCaptureP99Ms: r1(percentile(baseCapture, 99)),
    storeRssAfterLoadMB: mem.rssAfterLoadMB,
    storeHeapAfterLoadMB: mem.heapAfterLoadMB,
    storePeakRssMB: mem.peakRssMB,
  };
}

/**
 * A snapshot of accounts [0, n) written directly, in the layout the store writes
 * (snapshot.ts), with the empty journal it continues. Returns the byte offset where the
 * last account's line begins, so the file can be cut back to n - 1 accounts.
 */
export async function writeSnapshot(file: string, n: number, keyring: Keyring): Promise<number> {
  const fh = await openFile(file, 'w', 0o600);
  const templates = makeTemplates(keyring);
  let offset = 0;
  let lastStart = 0;
  try {
    let buf = `{"version":${SNAPSHOT_VERSION},"journal":1,"accounts":{`;
    for (let i = 0; i < n; i++) {
      if (i === n - 1) lastStart = offset + buf.length; // records are ASCII: chars = bytes
      buf += `${i === 0 ? '\n' : ',\n'}${JSON.stringify(addressOf(i))}:${recordJson(i, templates, keyring)}`;
      if (buf.length >= 1 << 20) {
        await fh.write(buf);
        offset += buf.length;
        buf = '';
      }
    }
    await fh.write(`${buf}\n}}\n`);
  } finally {
    await fh.close();
  }
  await createJournal(journalPath(file, 1));
  return lastStart;
}

/** Cut the snapshot back to the accounts before `lastStart` (see writeSnapshot). */
export async function dropLastAccount(file: string, lastStart: number): Promise<void> {
  const fh = await openFile(file, 'r+');
  try {
    await fh.truncate(lastStart);
    await fh.write('\n}}\n', lastStart);
  } finally {
    await fh.close();
  }
}
