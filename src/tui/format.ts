/**
 * Pure text helpers of the monitor: numbers, times, bars and sparklines as the screen shows
 * them. Byte sizes and ETAs read the same as in `autoport migrate`.
 */
import { formatBytes, formatDuration } from '../cli/render-migrate.js';
import { displayWidth, oneLine, truncate } from '../cli/text.js';

export { formatBytes, formatDuration };

/** eighth blocks, lowest to full (U+2581..U+2588) */
const SPARK = '\u2581\u2582\u2583\u2584\u2585\u2586\u2587\u2588';
const BAR_FULL = '\u2588';
const BAR_EMPTY = '\u2591';

/** "12s", "3m04s", "2h05m", "3d04h": a session's or the gateway's age */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d${String(h % 24).padStart(2, '0')}h`;
}

export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(Math.round(bytesPerSecond))}/s`;
}

/** local wall-clock time of an ISO timestamp, "14:03:07" */
export function formatClock(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '--:--:--';
  return [d.getHours(), d.getMinutes(), d.getSeconds()]
    .map((n) => String(n).padStart(2, '0'))
    .join(':');
}

/** milliseconds between two ISO timestamps (0 when either is unreadable) */
export function msBetween(fromIso: string, toIso: string): number {
  const d = Date.parse(toIso) - Date.parse(fromIso);
  return Number.isFinite(d) ? Math.max(0, d) : 0;
}

/**
 * One character per value, scaled to the largest one; zero is the lowest block so an idle
 * minute still shows as a baseline.
 */
export function sparkline(values: readonly number[]): string {
  const max = Math.max(0, ...values);
  return values
    .map((v) => {
      if (max === 0 || v <= 0) return SPARK[0];
      const level = Math.max(1, Math.ceil((v / max) * (SPARK.length - 1)));
      return SPARK[level];
    })
    .join('');
}

/** a bar of `width` cells, `done` of `total` filled (rounded down, full only when done) */
export function progressBar(done: number, total: number, width: number): string {
  const w = Math.max(1, width);
  const ratio = total > 0 ? Math.min(1, Math.max(0, done / total)) : 0;
  const filled = ratio >= 1 ? w : Math.min(w - 1, Math.floor(ratio * w));
  return BAR_FULL.repeat(filled) + BAR_EMPTY.repeat(w - filled);
}

/**
 * Cut to `width` terminal cells (CJK and emoji take two), marking the cut with "~": the
 * monitor's columns have always shown it, and its tests read it.
 */
export function fit(text: string, width: number): string {
  return truncate(oneLine(text), width, '~');
}

/** lines `text` takes when wrapped at word boundaries to `width` (as Ink wraps) */
export function wrappedLines(text: string, width: number): number {
  if (width <= 0) return 1;
  let lines = 1;
  let used = 0;
  for (const word of text.split(' ')) {
    const w = displayWidth(word);
    const need = used === 0 ? w : used + 1 + w;
    if (need <= width) used = need;
    else {
      lines += used === 0 ? 0 : 1;
      lines += Math.floor(Math.max(0, w - 1) / width);
      used = w % width || width;
    }
  }
  return lines;
}
