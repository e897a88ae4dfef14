/**
 * What bench:state's parts share: the accounts (records shaped like a migration in
 * progress: sealed credentials, folders with their progress, a mix of states), the capture
 * a first login does to the store, and the figures (percentiles, MB).
 */
import { performance, monitorEventLoopDelay } from 'node:perf_hooks';
import { seal, type Keyring } from '../src/core/state/crypto.js';
import type { AccountRecord, AccountState, FolderProgress } from '../src/core/state/types.js';

/** Logins in flight at once: the storm every capture figure is measured under. */
export const CONCURRENCY = 50;

/**
 * The state of account i, by i % 10: four in ten moved, three captured (waiting for the
 * worker pool), one failed, one never seen. Slot 4 is "transferring" for one account in ten
 * thousand only: a transfer in flight is a worker's, a handful per node, and a gateway
 * starting finds those as orphans to hand back; a tenth of a million would not be a site.
 */
export const TRANSFERRING_EVERY = 10_000;
const TRANSFERRING_SLOT = 4;

export function stateOf(i: number): AccountState {
  const slot = i % 10;
  if (slot < 5) return i % TRANSFERRING_EVERY === TRANSFERRING_SLOT ? 'transferring' : 'migrated';
  if (slot < 8) return 'captured';
  return slot === 8 ? 'unknown' : 'failed';
}

/** Slots a login goes to the source in (captured, never seen): what the login storms pick. */
export const SOURCE_SLOTS = [5, 6, 7, 8];

const FOLDERS = ['INBOX', 'Sent', 'Drafts', 'Trash', 'Archive/2023', 'Archive/2024'];

export function addressOf(i: number): string {
  return `user${i}@dept${i % 40}.example.org`;
}

export const DOMAINS = Array.from({ length: 40 }, (_, d) => `dept${d}.example.org`);

function iso(base: number, i: number): string {
  return new Date(base + i * 61_000).toISOString();
}

function folders(rec: AccountRecord, i: number, t: number): number {
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
      uidMap: `state-data/${rec.address}/${name.replace('/', '%2f')}-0badf00d.json`,
      updatedAt: iso(t + 2 * 86_400_000, i),
    };
    rec.folders[name] = fp;
    total += messages;
  }
  return total;
}

export function makeRecord(i: number, keyring: Keyring): AccountRecord {
  const address = addressOf(i);
  const state = stateOf(i);
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
    const total = folders(rec, i, t);
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

/** Logins come for any account: `n` addresses spread over the whole store. */
export function spreadAddresses(accounts: number, n = 4096): string[] {
  return Array.from({ length: n }, (_, k) => addressOf((k * 7919) % accounts));
}

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))] ?? NaN;
}

export function median(xs: number[]): number {
  return percentile(xs, 50);
}

export async function timed<T>(fn: () => Promise<T> | T): Promise<[number, T]> {
  const t0 = performance.now();
  const v = await fn();
  return [performance.now() - t0, v];
}

/** Longest event-loop stall while `fn` runs: what a proxied session would feel. */
export async function withLoopDelay<T>(fn: () => Promise<T>): Promise<[number, number, T]> {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  const [ms, v] = await timed(fn);
  h.disable();
  return [ms, h.max / 1e6, v];
}

/** What a capture does to the store. */
export interface CaptureTarget {
  update(address: string, fn: (r: AccountRecord) => void): unknown;
  flush(): Promise<void>;
}

/**
 * Captures before any is counted: a gateway has run a while when a storm comes, so the
 * code it runs through is compiled (the first thousand or so run slower on this machine).
 */
export const WARM_CAPTURES = 2000;

/** Captures one at a time: what one costs, without the wait behind the others in a storm. */
export const SOLO_CAPTURES = 200;

/**
 * `total` captures, CONCURRENCY at a time, each timed from its update() to its flush()
 * resolving: the wait a first login adds (src/core/login/capture.ts does the same two
 * calls). Stops early when `until` says so.
 */
export async function captureStorm(
  store: CaptureTarget,
  addresses: string[],
  keyring: Keyring,
  total: number,
  until: () => boolean = () => false,
  concurrency = CONCURRENCY,
): Promise<number[]> {
  const latencies: number[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < total && !until()) {
      const i = next++;
      const address = addresses[i % addresses.length] as string;
      const t0 = performance.now();
      // sealed for its account, as capture.ts does: a worker can open it
      const credentials = seal(keyring, `pw-${i}`, address);
      await store.update(address, (r) => {
        r.state = 'captured';
        r.credentials = credentials;
        r.lastLogin = new Date().toISOString();
      });
      await store.flush();
      latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return latencies;
}

export const mb = (b: number): number => Math.round(b / 104857.6) / 10;
export const r1 = (x: number): number => Math.round(x * 10) / 10;

/** A text table: label, figure, remark. */
export function printRows(rows: Array<[string, string, string]>): void {
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max(...rows.map((r) => r[1].length));
  for (const [a, b, c] of rows) console.log(`  ${a.padEnd(w0)}  ${b.padStart(w1)}  ${c}`);
}

/**
 * Records for the large sizes, made fast: sealing a million passwords costs minutes of CPU
 * (OpenSSL 3 sets up a cipher per seal), so account i is a copy of template i % 40, made by
 * makeRecord with its own sealed password, with the address put in. State, folders, domain
 * and byte size are those makeRecord gives i; the dates and counts are the template's, and
 * the credentials, sealed for the template's address, do not open for i (a worker that
 * picks such an account fails it, as it fails one whose destination refuses).
 */
export const TEMPLATES = 40;
const TEMPLATE_BASE = 40_040;

export interface Template {
  /** the template's account number: TEMPLATE_BASE + i % TEMPLATES */
  n: number;
  record: AccountRecord;
  json: string;
}

export function makeTemplates(keyring: Keyring): Template[] {
  return Array.from({ length: TEMPLATES }, (_, r) => {
    const record = makeRecord(TEMPLATE_BASE + r, keyring);
    return { n: TEMPLATE_BASE + r, record, json: JSON.stringify(record) };
  });
}

/** Whether account i is its template's copy (else makeRecord makes it: a rare transfer in flight). */
export function fromTemplate(i: number): boolean {
  return i % TRANSFERRING_EVERY !== TRANSFERRING_SLOT;
}

/** fromTemplate in SQL, over the account number g */
export const FROM_TEMPLATE_SQL = `g % ${TRANSFERRING_EVERY} <> ${TRANSFERRING_SLOT}`;

/** Account i's record as JSON text (see makeTemplates). */
export function recordJson(i: number, templates: Template[], keyring: Keyring): string {
  if (!fromTemplate(i)) return JSON.stringify(makeRecord(i, keyring));
  const t = templates[i % TEMPLATES] as Template;
  return t.json.replaceAll(`user${t.n}@`, `user${i}@`);
}
