/**
 * What the soak counts while it runs (sessions by kind and outcome, login latencies,
 * resource samples) and the arithmetic of its report. No I/O.
 */

export class Tally {
  readonly ok = new Map<string, number>();
  readonly failed = new Map<string, number>();
  /** failure reasons by kind, with one example each: the report shows the top few */
  readonly reasons = new Map<string, { n: number; example: string }>();
  readonly latency = new Map<string, number[]>();

  pass(kind: string, loginMs?: number): void {
    this.ok.set(kind, (this.ok.get(kind) ?? 0) + 1);
    if (loginMs !== undefined) {
      let l = this.latency.get(kind);
      if (!l) this.latency.set(kind, (l = []));
      l.push(loginMs);
    }
  }

  fail(kind: string, err: unknown): void {
    this.failed.set(kind, (this.failed.get(kind) ?? 0) + 1);
    const msg = err instanceof Error ? err.message : String(err);
    // group by the step and the shape of the reply, not by the varying details
    const key = `${kind}: ${msg.replace(/\d+/g, 'N').slice(0, 100)}`;
    const r = this.reasons.get(key);
    if (r) r.n++;
    else this.reasons.set(key, { n: 1, example: `${kind}: ${msg.slice(0, 200)}` });
  }

  total(map: Map<string, number>): number {
    let n = 0;
    for (const v of map.values()) n += v;
    return n;
  }
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

export interface Sample {
  /** seconds since the load started */
  t: number;
  rssKb: number;
  fds: number;
}

function median(xs: number[]): number {
  return percentile(xs, 50);
}

/**
 * RSS growth after warm-up, in %: the median of the samples just after the warm-up
 * (the next tenth of the run) against the median of the last tenth. Medians, because one
 * sample can land on a garbage collection.
 */
export function rssGrowth(
  samples: Sample[],
  warmupS: number,
): { from: number; to: number; pct: number } {
  const after = samples.filter((s) => s.t >= warmupS);
  if (after.length < 2) return { from: NaN, to: NaN, pct: NaN };
  const k = Math.max(1, Math.round(after.length / 10));
  const from = median(after.slice(0, k).map((s) => s.rssKb));
  const to = median(after.slice(-k).map((s) => s.rssKb));
  return { from, to, pct: ((to - from) / from) * 100 };
}

/** About `points` samples, evenly spaced, as "t=60s 92MB" pairs. */
export function series(samples: Sample[], points = 12): string {
  if (samples.length === 0) return '(no samples)';
  const step = Math.max(1, Math.ceil(samples.length / points));
  const picked = samples.filter((_, i) => i % step === 0 || i === samples.length - 1);
  return picked
    .map((s) => `${Math.round(s.t)}s ${(s.rssKb / 1024).toFixed(0)}MB/${s.fds}fd`)
    .join('  ');
}

export const fmtMs = (ms: number): string => (Number.isFinite(ms) ? `${ms.toFixed(1)} ms` : '-');
