/**
 * bench:state: the two state backends side by side, at a small and a large site, in one
 * run on one machine (issue 13):
 *
 * - JSON store (state-json.ts): at BENCH_ACCOUNTS everything (load, capture under a
 *   storm, compaction, memory, against the whole-file store it replaced); at BENCH_LARGE
 *   the snapshot written directly and opened in a fresh process, and one account past
 *   MAX_JSON_ACCOUNTS, where it must refuse to start;
 * - PostgreSQL (state-pg.ts): a server of its own filled to each size; the store opened in
 *   a fresh process (state-probe.ts): open time, captures under a storm, RSS;
 * - the real gateway (state-gateway.ts) on each: spawn to /healthz, RSS, a login storm
 *   through it where every login is a capture.
 *
 * Every storm is CONCURRENCY (50) at a time. Prints a table, the targets of issue 13 with
 * PASS/FAIL, and one JSON line. Env: BENCH_ACCOUNTS (default 100000), BENCH_LARGE (default
 * 1000000; 0 skips the large size), BENCH_ROUNDS (JSON loads, default 3), BENCH_CAPTURES
 * (per storm, default 10000), BENCH_LOGINS (through the gateway, default 2000),
 * BENCH_BACKENDS (default json,pg; one of them for a shorter run), BENCH_DIR
 * (default the system temp dir: put it on the disk the state will live on), BENCH_KEEP=1
 * keeps the files. The full run takes about twelve minutes on a busy 2-core machine.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem, release } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { generateKeyFile, loadKeyring } from '../src/core/state/crypto.js';
import { MAX_JSON_ACCOUNTS } from '../src/core/state/store-limits.js';
import { cliStart, measureGateway, type GatewayFigures } from './state-gateway.js';
import {
  benchJson,
  dropLastAccount,
  loadOnly,
  writeSnapshot,
  type JsonResult,
} from './state-json.js';
import { fillAccounts, serverVersion, settleTable, startBenchPostgres } from './state-pg.js';
import { runProbe, type ProbeResult } from './state-probe-run.js';
import { CONCURRENCY, addressOf, SOURCE_SLOTS, timed, r1 } from './state-records.js';
import { printReport, type Report } from './state-report.js';

const SMALL = Number(process.env.BENCH_ACCOUNTS ?? 100_000);
const LARGE = Number(process.env.BENCH_LARGE ?? 1_000_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CAPTURES = Number(process.env.BENCH_CAPTURES ?? 10000);
const LOGINS = Number(process.env.BENCH_LOGINS ?? 2000);
const BACKENDS = (process.env.BENCH_BACKENDS ?? 'json,pg').split(',');

setFlagsFromString('--expose-gc');
/** Collect between phases, so one phase's garbage is not paid for by the next one's figures. */
const gc = runInNewContext('gc') as () => void;

/** Accounts a login goes to the source for (captured, never seen), spread over all `n`. */
function stormAddresses(n: number): string[] {
  const tens = Math.max(1, Math.floor(n / 10));
  return Array.from({ length: 4096 }, (_, j) =>
    addressOf(((j * 7919) % tens) * 10 + (SOURCE_SLOTS[j % 4] as number)),
  );
}

function gatewayOn(state: string, dir: string, keyFile: string, n: number, name: string) {
  const gdir = join(dir, name);
  mkdirSync(gdir);
  return measureGateway({
    state,
    keyFile,
    dir: gdir,
    addresses: stormAddresses(n),
    logins: LOGINS,
  });
}

/** The JSON store at the large size: one account past its limit (refused), then at it. */
async function jsonLarge(dir: string, keyFile: string): Promise<Report['jsonLarge']> {
  const file = join(dir, 'large.json');
  const keyring = loadKeyring(keyFile);
  let refusal: ProbeResult | undefined;
  try {
    const over = Math.max(LARGE, MAX_JSON_ACCOUNTS) + 1;
    if (LARGE >= MAX_JSON_ACCOUNTS) {
      const [writeMs, lastStart] = await timed(() => writeSnapshot(file, over, keyring));
      console.error(`  JSON snapshot of ${over} accounts written in ${r1(writeMs / 1000)} s`);
      const [ms, r] = await timed(() => runProbe(['json', file, keyFile, String(over), '0']));
      refusal = { ...r, openMs: r1(ms) };
      if (LARGE > MAX_JSON_ACCOUNTS) return { accounts: LARGE, refusal };
      await dropLastAccount(file, lastStart);
    } else {
      await writeSnapshot(file, LARGE, keyring);
    }
    const open = await runProbe(['json', file, keyFile, String(LARGE), String(CAPTURES)]);
    return { accounts: LARGE, open, ...(refusal ? { refusal, refusedAt: over } : {}) };
  } finally {
    for (const f of readdirSync(dir))
      if (f.startsWith('large.json')) rmSync(join(dir, f), { force: true });
  }
}

async function postgres(dir: string, keyFile: string, sizes: number[]): Promise<Report['pg']> {
  const keyring = loadKeyring(keyFile);
  const db = await startBenchPostgres();
  const out: Report['pg']['sizes'] = [];
  try {
    let have = 0;
    for (const n of sizes) {
      const [fillMs] = await timed(() => fillAccounts(db.url, have, n, keyring));
      have = n;
      const tableMB = await settleTable(db.url);
      console.error(
        `  PostgreSQL filled to ${n} accounts in ${r1(fillMs / 1000)} s, ${tableMB} MB`,
      );
      const store = await runProbe(['pg', db.url, keyFile, String(n), String(CAPTURES)]);
      const gateway = await gatewayOn(db.url, dir, keyFile, n, `gw-pg-${n}`);
      out.push({ accounts: n, fillMs: r1(fillMs), tableMB, store, gateway });
    }
    return { server: await serverVersion(db.url), sizes: out };
  } finally {
    await db.stop();
  }
}

/** The JSON store at both sizes, and the gateway on it at the small one. */
async function jsonBackend(
  dir: string,
  keyFile: string,
): Promise<Pick<Report, 'json' | 'jsonLarge'>> {
  console.error(`JSON store, ${SMALL} accounts ...`);
  const jsonFile = join(dir, 'state.json');
  const json: JsonResult = await benchJson(jsonFile, {
    dir,
    keyring: loadKeyring(keyFile),
    keyFile,
    accounts: SMALL,
    rounds: ROUNDS,
    captures: CAPTURES,
    gc,
  });
  const gateway: GatewayFigures = await gatewayOn(jsonFile, dir, keyFile, SMALL, 'gw-json');
  gc();
  console.error(`JSON store, ${LARGE} accounts ...`);
  const jsonLargeResult = LARGE > 0 ? await jsonLarge(dir, keyFile) : undefined;
  return { json: { ...json, gateway }, jsonLarge: jsonLargeResult };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), 'autoport-bench-'));
  const load0 = loadavg()
    .map((x) => x.toFixed(1))
    .join(' ');
  try {
    const keyFile = join(dir, 'key');
    await generateKeyFile(keyFile);
    const json = BACKENDS.includes('json') ? await jsonBackend(dir, keyFile) : undefined;
    console.error('PostgreSQL ...');
    const pg = BACKENDS.includes('pg')
      ? await postgres(dir, keyFile, LARGE > 0 ? [SMALL, LARGE] : [SMALL])
      : { server: 'PostgreSQL not run', sizes: [] };
    const cliStartMs = await cliStart();
    printReport({
      conditions: {
        loadAverage: `${load0} at the start, ${loadavg()
          .map((x) => x.toFixed(1))
          .join(' ')} at the end`,
        cliStartMs,
        cpus: `${cpus().length} x ${cpus()[0]?.model ?? '?'}`,
        memoryGB: r1(totalmem() / 2 ** 30),
        kernel: release(),
        node: process.version,
        dir,
        concurrency: CONCURRENCY,
        captures: CAPTURES,
        logins: LOGINS,
      },
      ...json,
      pg,
    });
  } finally {
    if (process.env.BENCH_KEEP) console.error(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--load-only')
  await loadOnly(process.argv[3] as string, process.argv[4] as string);
else await main();
