/**
 * bench:state's output: the backends side by side, the targets of issue 13 with PASS or
 * FAIL, the JSON store's own details, the conditions, and everything as one JSON line.
 */
import type { GatewayFigures } from './state-gateway.js';
import type { JsonResult } from './state-json.js';
import type { ProbeResult } from './state-probe.js';
import { printRows } from './state-records.js';

export interface PgSize {
  accounts: number;
  fillMs: number;
  tableMB: number;
  store: ProbeResult;
  gateway: GatewayFigures;
}

export interface Report {
  conditions: Record<string, string | number>;
  /** undefined when BENCH_BACKENDS left the JSON store out */
  json?: JsonResult & { gateway: GatewayFigures };
  jsonLarge?: { accounts: number; open?: ProbeResult; refusal?: ProbeResult; refusedAt?: number };
  /** no sizes when BENCH_BACKENDS left PostgreSQL out */
  pg: { server: string; sizes: PgSize[] };
}

/** Issue 13's targets. */
const JSON_CAPTURE_P99_MS = 20;
const JSON_LOAD_MS = 2000;
const PG_START_MS = 2000;
const PG_CAPTURE_P99_MS = 20;
const PG_GATEWAY_RSS_MB = 250;
/** "independent of the account count": the large site's gateway within this of the small's */
const PG_RSS_GROWTH_MB = 25;

type Cell = number | string | undefined;
const f = (v: Cell, unit = ''): string =>
  v === undefined || (typeof v === 'number' && Number.isNaN(v)) ? '-' : `${v}${unit}`;
const pair = (a: Cell, b: Cell, unit: string): string =>
  a === undefined ? '-' : `${f(a)} / ${f(b)}${unit}`;

function sideBySide(r: Report): void {
  const big = r.jsonLarge?.open;
  const [pgS, pgL] = r.pg.sizes;
  const head = ['', `JSON ${r.json?.accounts ?? '-'}`, `JSON ${r.jsonLarge?.accounts ?? '-'}`];
  for (const p of r.pg.sizes) head.push(`PostgreSQL ${p.accounts}`);
  const rows: string[][] = [
    head,
    [
      'state on disk',
      f(r.json?.fileMB, ' MB'),
      '-',
      f(pgS?.tableMB, ' MB'),
      f(pgL?.tableMB, ' MB'),
    ],
    [
      'store load / open',
      f(r.json?.loadMs, ' ms'),
      big ? f(big.openMs, ' ms') : r.jsonLarge?.refusal ? 'refused' : '-',
      f(pgS?.store.openMs, ' ms'),
      f(pgL?.store.openMs, ' ms'),
    ],
    [
      'gateway start (spawn to /healthz 200)',
      f(r.json?.gateway.startMs, ' ms'),
      '-',
      f(pgS?.gateway.startMs, ' ms'),
      f(pgL?.gateway.startMs, ' ms'),
    ],
    [
      'capture p50 / p99, store',
      pair(r.json?.captureP50Ms, r.json?.captureP99Ms, ' ms'),
      pair(big?.captureP50Ms, big?.captureP99Ms, ' ms'),
      pair(pgS?.store.captureP50Ms, pgS?.store.captureP99Ms, ' ms'),
      pair(pgL?.store.captureP50Ms, pgL?.store.captureP99Ms, ' ms'),
    ],
    [
      'capture p50 / p99, store, one at a time',
      pair(r.json?.soloP50Ms, r.json?.soloP99Ms, ' ms'),
      pair(big?.soloP50Ms, big?.soloP99Ms, ' ms'),
      pair(pgS?.store.soloP50Ms, pgS?.store.soloP99Ms, ' ms'),
      pair(pgL?.store.soloP50Ms, pgL?.store.soloP99Ms, ' ms'),
    ],
    [
      'durable captures / s in the storm',
      f(r.json?.capturesPerSec),
      f(big?.capturesPerSec),
      f(pgS?.store.capturesPerSec),
      f(pgL?.store.capturesPerSec),
    ],
    [
      'login via gateway p50 / p99 (a capture)',
      pair(r.json?.gateway.loginP50Ms, r.json?.gateway.loginP99Ms, ' ms'),
      '-',
      pair(pgS?.gateway.loginP50Ms, pgS?.gateway.loginP99Ms, ' ms'),
      pair(pgL?.gateway.loginP50Ms, pgL?.gateway.loginP99Ms, ' ms'),
    ],
    [
      'logins / s via gateway (failed)',
      r.json ? `${r.json.gateway.loginsPerSec} (${r.json.gateway.loginsFailed})` : '-',
      '-',
      ...r.pg.sizes.map((p) => `${p.gateway.loginsPerSec} (${p.gateway.loginsFailed})`),
    ],
    [
      'RSS, store alone after load / peak',
      pair(r.json?.storeRssAfterLoadMB, r.json?.storePeakRssMB, ' MB'),
      pair(big?.rssAfterOpenMB, big?.peakRssMB, ' MB'),
      pair(pgS?.store.rssAfterOpenMB, pgS?.store.peakRssMB, ' MB'),
      pair(pgL?.store.rssAfterOpenMB, pgL?.store.peakRssMB, ' MB'),
    ],
    [
      'RSS, gateway started / after storm',
      pair(r.json?.gateway.rssAfterStartMB, r.json?.gateway.rssAfterStormMB, ' MB'),
      '-',
      pair(pgS?.gateway.rssAfterStartMB, pgS?.gateway.rssAfterStormMB, ' MB'),
      pair(pgL?.gateway.rssAfterStartMB, pgL?.gateway.rssAfterStormMB, ' MB'),
    ],
    [
      'gateway stop (SIGTERM to exit)',
      r.json ? `${r.json.gateway.stopMs} ms, ${r.json.gateway.exit}` : '-',
      '-',
      ...r.pg.sizes.map((p) => `${p.gateway.stopMs} ms, ${p.gateway.exit}`),
    ],
    [
      'RSS, gateway peak',
      f(r.json?.gateway.peakRssMB, ' MB'),
      '-',
      f(pgS?.gateway.peakRssMB, ' MB'),
      f(pgL?.gateway.peakRssMB, ' MB'),
    ],
  ];
  const widths = head.map((_, c) => Math.max(...rows.map((row) => (row[c] ?? '').length)));
  for (const row of rows)
    console.log(
      `  ${row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ')}`,
    );
  const refusal = r.jsonLarge?.refusal;
  if (refusal)
    console.log(
      `  JSON store at ${r.jsonLarge?.refusedAt ?? r.jsonLarge?.accounts} accounts: ${refusal.refused ? `refused to open after ${(refusal.openMs / 1000).toFixed(1)} s: ${refusal.refused}` : 'OPENED (it should have refused)'}`,
    );
}

type Target = { target: string; value: number | undefined; limit: number; pass: boolean };

function targets(r: Report): Target[] {
  const [pgS, pgL] = r.pg.sizes;
  const large = pgL ?? pgS;
  const at = (v: number | undefined, limit: number, target: string): Target => ({
    target,
    value: v,
    limit,
    pass: v !== undefined && !Number.isNaN(v) && v <= limit,
  });
  const out: Target[] = [];
  if (r.json)
    out.push(
      at(
        r.json.captureP99Ms,
        JSON_CAPTURE_P99_MS,
        `JSON ${r.json.accounts}: capture p99 <= ${JSON_CAPTURE_P99_MS} ms`,
      ),
      at(r.json.loadMs, JSON_LOAD_MS, `JSON ${r.json.accounts}: load <= ${JSON_LOAD_MS} ms`),
    );
  if (large)
    out.push(
      at(
        large?.gateway.startMs,
        PG_START_MS,
        `PostgreSQL ${large?.accounts}: gateway start <= ${PG_START_MS} ms`,
      ),
      at(
        large?.store.captureP99Ms,
        PG_CAPTURE_P99_MS,
        `PostgreSQL ${large?.accounts}: capture p99 <= ${PG_CAPTURE_P99_MS} ms`,
      ),
      at(
        large?.gateway.peakRssMB,
        PG_GATEWAY_RSS_MB,
        `PostgreSQL ${large?.accounts}: gateway peak RSS <= ${PG_GATEWAY_RSS_MB} MB`,
      ),
    );
  if (pgS && pgL)
    out.push(
      at(
        Math.round((pgL.gateway.peakRssMB - pgS.gateway.peakRssMB) * 10) / 10,
        PG_RSS_GROWTH_MB,
        `PostgreSQL: gateway peak RSS at ${pgL.accounts} minus at ${pgS.accounts} <= ${PG_RSS_GROWTH_MB} MB`,
      ),
    );
  return out;
}

function jsonDetails(j: JsonResult): void {
  printRows([
    [
      'load, journal at its threshold',
      `${j.loadWithJournalMs} ms`,
      `${j.journalMB} MB of journal replayed`,
    ],
    ['load, whole-file store (before)', `${j.baselineLoadMs} ms`, ''],
    [
      'capture p50 / p99, whole-file store',
      `${j.baselineCaptureP50Ms} / ${j.baselineCaptureP99Ms} ms`,
      `${j.baselineCaptures} captures`,
    ],
    [
      'capture p50 / p99, during compaction',
      `${j.captureDuringCompactP50Ms} / ${j.captureDuringCompactP99Ms} ms`,
      `${j.capturesDuringCompaction} captures`,
    ],
    [
      'compaction',
      `${j.compactMs} ms`,
      `max event-loop stall ${j.compactMaxStallMs} ms; first: ${j.firstCompactMs} ms`,
    ],
    [`import ${j.accounts} accounts (journal)`, `${j.importMs} ms`, ''],
  ]);
}

export function printReport(r: Report): void {
  const c = r.conditions;
  console.log(
    `\nbench:state on ${c.cpus}, ${c.memoryGB} GB, Linux ${c.kernel}, Node ${c.node}, ${r.pg.server}`,
  );
  console.log(
    `${c.concurrency} at a time in every storm; ${c.captures} captures per store, ${c.logins} logins per gateway; files in ${c.dir}\n`,
  );
  sideBySide(r);
  console.log('\ntargets (issue 13)');
  const t = targets(r);
  for (const x of t) console.log(`  ${x.pass ? 'PASS' : 'FAIL'}  ${x.target}: ${x.value ?? '-'}`);
  if (r.json) {
    console.log(`\nJSON store ${r.json.accounts}, details`);
    jsonDetails(r.json);
  }
  console.log(JSON.stringify({ ...r, targets: t }));
}
