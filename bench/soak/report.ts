/**
 * The soak's report: the figures as a few tables, the verdict on each goal, and one JSON
 * line. Pure: everything it prints is handed in.
 */
import { KINDS } from './clients.js';
import type { GatewayGauges } from './gateway.js';
import { GOOD_ADDRESSES, type LoadResult } from './load.js';
import { fmtMs, percentile, rssGrowth, series, type Sample, Tally } from './tally.js';

export interface Figures {
  rssKb: number;
  fds: number;
  gauges?: GatewayGauges;
  /** free connection slots per probed address */
  slots: Record<string, number>;
}

export interface ReportInput {
  sessions: number;
  idleTarget: number;
  idleSeconds: number;
  sampleSeconds: number;
  warmupPct: number;
  /** the per-address connection limit the slot probe expects to find free */
  perAddress: number;
  load: LoadResult;
  tally: { gateway: Tally; direct: Tally };
  loadSamples: Sample[];
  /** CPU per well-behaved session during the load (hostile and baseline work included) */
  cpu: { gatewayMs: number; clientMs: number };
  idle: { opened: number; served: number; openSeconds: number };
  idleKb: number;
  idleTally: Tally;
  start: Figures;
  end: Figures | undefined;
  /** how the gateway died, if it did */
  died: string | undefined;
}

export function report(i: ReportInput): { text: string; json: object; pass: boolean } {
  const { load, tally, idle, idleKb, idleTally, loadSamples, start, end, cpu } = i;
  const g = tally.gateway;
  const verdicts: Array<[boolean, string]> = [];
  const out: string[] = [];
  out.push(
    `AutoPort soak: ${load.launched} sessions in ${load.seconds.toFixed(0)} s from ${GOOD_ADDRESSES.length} addresses (${(load.launched / load.seconds).toFixed(0)}/s), then ${i.idleTarget} idle TLS sessions for ${i.idleSeconds} s`,
  );
  out.push(
    'gateway limits: the CLI defaults (1,000 connections per address, 10,000 in all, brakes as shipped), none raised; Dovecot sized for the idle sessions (50 clients per process, no per-user-and-IP cap)',
  );
  if (load.stoppedBecause) out.push(`LOAD STOPPED EARLY: ${load.stoppedBecause}`);
  out.push('', 'well-behaved sessions through the gateway      ok   failed');
  const kinds = new Set([...g.ok.keys(), ...[...g.failed.keys()].map((k) => k.split(' ')[0]!)]);
  for (const k of kinds) {
    const failed = [...g.failed]
      .filter(([f]) => f.startsWith(`${k} `))
      .reduce((a, [, n]) => a + n, 0);
    out.push(
      `  ${k.padEnd(40)} ${String(g.ok.get(k) ?? 0).padStart(7)} ${String(failed).padStart(8)}`,
    );
  }
  const topReasons = (t: Tally): string[] =>
    [...t.reasons]
      .sort((a, b) => b[1].n - a[1].n)
      .slice(0, 6)
      .map(([, r]) => `    ${r.n} x ${r.example}`);
  if (g.reasons.size) out.push('  failures, most frequent first:', ...topReasons(g));
  out.push(
    '',
    `login latency, connect to login accepted, TLS included (captured accounts; baseline: same client to Dovecot/Postfix directly, ${tally.direct.total(tally.direct.ok)} sessions, ${tally.direct.total(tally.direct.failed)} failed)`,
  );
  out.push(
    `  ${'kind'.padEnd(16)} ${'gateway p50'.padStart(12)} ${'p99'.padStart(10)}   ${'direct p50'.padStart(12)} ${'p99'.padStart(10)}`,
  );
  for (const k of KINDS) {
    const a = g.latency.get(k) ?? [];
    const d = tally.direct.latency.get(k) ?? [];
    out.push(
      `  ${k.padEnd(16)} ${fmtMs(percentile(a, 50)).padStart(12)} ${fmtMs(percentile(a, 99)).padStart(10)}   ${fmtMs(percentile(d, 50)).padStart(12)} ${fmtMs(percentile(d, 99)).padStart(10)}`,
    );
  }
  out.push('', 'hostile clients (from 127.0.0.12-15, real brakes): kind: what happened');
  for (const [k, n] of [...load.hostile].sort()) out.push(`  ${k.padEnd(40)} ${n}`);
  const warmupS = (load.seconds * i.warmupPct) / 100;
  const growth = rssGrowth(loadSamples, warmupS);
  out.push(
    '',
    `CPU per session during the load: gateway ${cpu.gatewayMs.toFixed(1)} ms, this client ${cpu.clientMs.toFixed(1)} ms (on 2 cores the client's share limits the rate)`,
    `gateway RSS/fds during the load (every ${i.sampleSeconds} s): ${series(loadSamples)}`,
  );
  out.push(
    `  RSS growth after warm-up (${warmupS.toFixed(0)} s): ${(growth.from / 1024).toFixed(1)} MB -> ${(growth.to / 1024).toFixed(1)} MB = ${growth.pct.toFixed(1)} %`,
  );
  out.push(
    `idle TLS sessions: ${idle.opened} opened in ${idle.openSeconds.toFixed(0)} s, ${idle.served} served to the end, ${Number.isFinite(idleKb) ? idleKb.toFixed(1) : '-'} KB RSS per session (growth from a fifth to all open, after a GC each; noise of a few MB makes it meaningless below ~1,000 sessions)`,
  );
  if (idleTally.reasons.size) out.push('  failures:', ...topReasons(idleTally));
  const slotsUsed = (f: Figures | undefined): number | undefined =>
    f ? Object.values(f.slots).reduce((a, n) => a + (i.perAddress - n), 0) : undefined;
  out.push(
    '',
    `${'at'.padEnd(6)} ${'RSS MB'.padStart(8)} ${'fds'.padStart(6)} ${'sessions_open'.padStart(14)} ${'slots taken (probed)'.padStart(22)} ${'slot gauge'.padStart(11)}`,
  );
  for (const [name, f] of [
    ['start', start],
    ['end', end],
  ] as const)
    out.push(
      `${name.padEnd(6)} ${f ? (f.rssKb / 1024).toFixed(1).padStart(8) : '-'.padStart(8)} ${String(f?.fds ?? '-').padStart(6)} ${String(f?.gauges?.sessionsOpen ?? '-').padStart(14)} ${String(slotsUsed(f) ?? '-').padStart(22)} ${String(f?.gauges?.slots ?? 'none').padStart(11)}`,
    );
  if (end) {
    const leaky = Object.entries(end.slots).filter(([a, n]) => n !== start.slots[a]);
    if (leaky.length)
      out.push(
        `  free slots per address, start -> end: ${leaky.map(([a, n]) => `${a} ${start.slots[a]}->${n}`).join(', ')}`,
      );
  }
  const failedGood = g.total(g.failed);
  verdicts.push(
    [!i.died, `gateway process alive${i.died ? ` (it died: ${i.died})` : ''}`],
    [
      failedGood === 0 && load.launched === i.sessions,
      `0 failed well-behaved sessions (${failedGood} failed, ${load.launched}/${i.sessions} launched)`,
    ],
    [growth.pct < 10, `RSS growth after warm-up < 10 % (${growth.pct.toFixed(1)} %)`],
    [
      end !== undefined && end.fds === start.fds,
      `open fds back to start (${start.fds} -> ${end?.fds ?? '-'})`,
    ],
    [
      end !== undefined &&
        slotsUsed(end) === slotsUsed(start) &&
        end.gauges?.slots === start.gauges?.slots,
      `connection slots back to start (taken ${slotsUsed(start)} -> ${slotsUsed(end) ?? '-'})`,
    ],
    [
      end?.gauges !== undefined && end.gauges.sessionsOpen === start.gauges?.sessionsOpen,
      `autoport_sessions_open back to start (${start.gauges?.sessionsOpen ?? '-'} -> ${end?.gauges?.sessionsOpen ?? '-'})`,
    ],
    [
      i.idleTarget === 0 || idle.served === i.idleTarget,
      `all ${i.idleTarget} idle TLS sessions served (${idle.served})`,
    ],
  );
  out.push('', ...verdicts.map(([ok, what]) => `${ok ? 'pass' : 'FAIL'}  ${what}`));
  const pass = verdicts.every(([ok]) => ok);
  out.push(`VERDICT: ${pass ? 'PASS' : 'FAIL'}`);
  const json = {
    bench: 'soak',
    sessions: i.sessions,
    launched: load.launched,
    seconds: Math.round(load.seconds),
    ok: Object.fromEntries(g.ok),
    failed: Object.fromEntries(g.failed),
    rssGrowthPct: Number(growth.pct.toFixed(2)),
    idle: { ...idle, kbPerSession: Number(idleKb.toFixed(1)) },
    start: {
      rssKb: start.rssKb,
      fds: start.fds,
      sessionsOpen: start.gauges?.sessionsOpen,
      slotsTaken: slotsUsed(start),
    },
    end: end && {
      rssKb: end.rssKb,
      fds: end.fds,
      sessionsOpen: end.gauges?.sessionsOpen,
      slotsTaken: slotsUsed(end),
    },
    pass,
  };
  return { text: out.join('\n'), json, pass };
}
