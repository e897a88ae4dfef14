/**
 * `accounts import` of BENCH_ACCOUNTS (default 20000) new addresses, then the same list
 * again (all unchanged), on the JSON store and on PostgreSQL (the test harness's own
 * server, or AUTOPORT_TEST_PG_URL), with the import as it was (a get() then an update()
 * per address, one at a time) and as it is (importAddresses: one update() each, deciding
 * under the row lock, IMPORT_CONCURRENCY in flight). Run: node --import tsx bench/import.ts
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { importAddresses, type ImportResult } from '../src/core/accounts/import.js';
import { openJsonStore } from '../src/core/state/json-store.js';
import { openPgStore } from '../src/core/state/pg-store.js';
import type { StateStore } from '../src/core/state/types.js';
import { startPostgres } from '../test/support/postgres.js';

const N = Number(process.env.BENCH_ACCOUNTS ?? 20_000);

/** the import before: a get() and an update() per address, sequentially */
async function sequential(store: StateStore, addresses: readonly string[]): Promise<ImportResult> {
  const r: ImportResult = { added: 0, marked: 0, unchanged: 0, duplicates: 0, total: 0 };
  for (const address of addresses) {
    const before = await store.get(address);
    if (before?.imported) {
      r.unchanged++;
      continue;
    }
    await store.update(address, (rec) => void (rec.imported = true));
    if (before) r.marked++;
    else r.added++;
  }
  r.total = addresses.length;
  return r;
}

type Importer = (s: StateStore, a: readonly string[]) => Promise<ImportResult>;

async function timed(store: StateStore, f: Importer, a: readonly string[]): Promise<string> {
  const t0 = performance.now();
  const r = await f(store, a);
  await store.flush();
  const ms = performance.now() - t0;
  return `${(ms / 1000).toFixed(2)} s (${Math.round(a.length / (ms / 1000))}/s; +${r.added} =${r.unchanged})`;
}

async function main(): Promise<void> {
  const addresses = Array.from({ length: N }, (_, i) => `user${i}@example.org`);
  const dir = mkdtempSync(join(tmpdir(), 'ap-bench-import-'));
  const db = await startPostgres();
  const rows: string[] = [];
  try {
    for (const [name, f] of [
      ['before', sequential],
      ['after', importAddresses],
    ] as Array<[string, Importer]>) {
      const json = await openJsonStore(join(dir, `${name}.json`));
      rows.push(`json  ${name.padEnd(6)} new: ${await timed(json, f, addresses)}`);
      rows.push(`json  ${name.padEnd(6)} again: ${await timed(json, f, addresses)}`);
      await json.close();
      const admin = new pg.Client({ connectionString: db.url });
      await admin.connect();
      // every table of the schema, whatever migrations added
      await admin.query('DROP SCHEMA public CASCADE; CREATE SCHEMA public');
      await admin.end();
      const store = await openPgStore(db.url);
      rows.push(`pg    ${name.padEnd(6)} new: ${await timed(store, f, addresses)}`);
      rows.push(`pg    ${name.padEnd(6)} again: ${await timed(store, f, addresses)}`);
      await store.close();
    }
  } finally {
    await db.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(`accounts import of ${N} addresses\n${rows.join('\n')}`);
}

await main();
