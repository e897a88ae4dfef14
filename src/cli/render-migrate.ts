/**
 * Human output of `autoport migrate`: on a terminal a redrawn block with one line per
 * folder being copied and an overall line (messages, MB, rate, ETA); elsewhere (a pipe, a
 * log file, systemd) plain lines at most every few seconds and one per finished folder.
 * Both consume the same MigrateEvents; `--json` prints the result objects instead.
 */
import type { FolderProgressEvent } from '../core/transfer/copy/folder-copy.js';
import type { DryRunResult } from '../core/transfer/dry-run.js';
import type { AccountResult, FolderSummary, MigrateEvent } from '../core/transfer/result.js';
import { plain, type Style } from './style.js';
import { truncate } from './text.js';

const MB = 1024 * 1024;

export function formatBytes(n: number): string {
  if (n >= 1024 * MB) return `${(n / 1024 / MB).toFixed(2)} GB`;
  if (n >= MB) return `${(n / MB).toFixed(1)} MB`;
  if (n >= 1024) return `${(n / 1024).toFixed(0)} KB`;
  return `${n} B`;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  return h > 0
    ? `${h}:${String(m).padStart(2, '0')}:${String(r).padStart(2, '0')}`
    : `${m}:${String(r).padStart(2, '0')}`;
}

interface Live {
  address: string;
  progress: FolderProgressEvent;
  startedAt: number;
}

export interface ProgressView {
  onEvent(e: MigrateEvent): void;
  /** stop redrawing and leave the cursor below the block */
  stop(): void;
}

/** Progress on a terminal (tty: true) or as plain lines. */
export function progressView(
  write: (s: string) => void,
  tty: boolean,
  columns = 100,
  now: () => number = Date.now,
  style: Style = plain,
): ProgressView {
  const live = new Map<string, Live>();
  const start = now();
  let copied = 0;
  let copiedBytes = 0;
  let drawn = 0;
  let lastPlain = 0;
  let timer: NodeJS.Timeout | null = null;
  /** one cell short of the width, so the terminal never wraps a line of the redrawn block */
  const cut = (s: string): string => truncate(s, columns - 1);

  const folderLine = (l: Live): string => {
    const p = l.progress;
    const secs = Math.max(0.001, (now() - l.startedAt) / 1000);
    const rate = p.copied / secs;
    const eta = rate > 0 ? (p.toCopy - p.copied) / rate : NaN;
    return cut(
      `  ${l.address} ${p.folder}: ${p.copied}/${p.toCopy} msgs, ${formatBytes(p.copiedBytes)}, ${rate.toFixed(0)} msg/s, ETA ${formatDuration(eta)}${p.failed ? `, ${p.failed} failed` : ''}`,
    );
  };
  const totalLine = (): string => {
    let done = copied;
    let bytes = copiedBytes;
    for (const l of live.values()) {
      done += l.progress.copied;
      bytes += l.progress.copiedBytes;
    }
    const secs = Math.max(0.001, (now() - start) / 1000);
    return cut(
      `total: ${done} msgs, ${formatBytes(bytes)}, ${(done / secs).toFixed(0)} msg/s, ${(bytes / MB / secs).toFixed(1)} MB/s, ${formatDuration(secs)} elapsed`,
    );
  };
  const redraw = (): void => {
    if (!tty) return;
    const lines = [...[...live.values()].map(folderLine), totalLine()];
    let out = drawn > 0 ? `\x1b[${drawn}A` : '';
    for (const l of lines) out += `\x1b[2K${l}\n`;
    for (let i = lines.length; i < drawn; i++) out += '\x1b[2K\n';
    if (drawn > lines.length) out += `\x1b[${drawn - lines.length}A`;
    write(out);
    drawn = lines.length;
  };
  /** a finished line goes above the live block, which is drawn again below it */
  const above = (line: string): void => {
    if (tty && drawn > 0) {
      write(`\x1b[${drawn}A\x1b[J`);
      drawn = 0;
    }
    write(`${line}\n`);
    redraw();
  };
  if (tty) {
    timer = setInterval(redraw, 250);
    timer.unref();
  }

  return {
    onEvent(e) {
      switch (e.type) {
        case 'phase':
          if (e.phase !== 'copy') above(`${e.address}: ${e.phase}...`);
          break;
        case 'plan':
          above(`${e.address}: ${e.plan.entries.length} folders planned`);
          break;
        case 'progress': {
          const key = `${e.address}\0${e.progress.folder}`;
          const l = live.get(key) ?? { address: e.address, progress: e.progress, startedAt: now() };
          l.progress = e.progress;
          live.set(key, l);
          if (!tty && now() - lastPlain > 5000) {
            lastPlain = now();
            write(`${folderLine(l).trim()}\n`);
          }
          break;
        }
        case 'folder-done': {
          const key = `${e.address}\0${e.folder.source}`;
          const l = live.get(key);
          live.delete(key);
          copied += l?.progress.copied ?? 0;
          copiedBytes += l?.progress.copiedBytes ?? 0;
          above(`${e.address}: ${folderDoneLine(e.folder)}`);
          break;
        }
        case 'warning':
          above(`${e.address}: warning: ${e.message}`);
          break;
        case 'done':
          above(accountLine(e.result, style));
          break;
      }
    },
    stop() {
      if (timer) clearInterval(timer);
      if (tty && drawn > 0) write(`\x1b[${drawn}A\x1b[J`);
      drawn = 0;
    },
  };
}

export function folderDoneLine(f: FolderSummary): string {
  if (f.error) return `${f.source}: FAILED: ${f.error}`;
  const parts = [`${f.copied} copied`];
  if (f.matched) parts.push(`${f.matched} already there`);
  if (f.flagsUpdated) parts.push(`${f.flagsUpdated} flag changes`);
  if (f.expunged) parts.push(`${f.expunged} removed`);
  if (f.skipped) parts.push(`${f.skipped} skipped`);
  if (f.failed) parts.push(`${f.failed} FAILED`);
  const v = f.verify
    ? f.verify.ok
      ? 'verified'
      : `verify: ${Object.entries(f.verify.differences)
          .map(([c, n]) => `${n} ${c}`)
          .join(', ')}`
    : '';
  const name = f.destination === f.source ? f.source : `${f.source} -> ${f.destination}`;
  return `${name}: ${f.messages} msgs, ${parts.join(', ')}${v ? `; ${v}` : ''}`;
}

export function accountLine(r: AccountResult, style: Style = plain): string {
  const t = r.totals;
  const secs = r.durationMs / 1000;
  const rate = secs > 0 ? t.copied / secs : 0;
  const status = r.ok ? style.status('migrated', 'ok') : style.status('FAILED', 'bad');
  const lines = [
    `${r.address}: ${status} - ${t.folders} folders, ${t.messages} msgs (${formatBytes(t.bytes)}); copied ${t.copied} (${formatBytes(t.copiedBytes)}) in ${formatDuration(secs)}, ${rate.toFixed(0)} msg/s` +
      `${t.matched ? `, ${t.matched} already there` : ''}${t.skipped ? `, ${t.skipped} skipped` : ''}${t.failed ? `, ${t.failed} failed` : ''}`,
  ];
  if (r.verify)
    lines.push(
      `  verify: ${r.verify.ok ? 'ok' : `${r.verify.differences} differences`} ${JSON.stringify(r.verify.byCause)}`,
    );
  if (r.lock)
    lines.push(
      `  switch: locked ${(r.lock.ms / 1000).toFixed(2)} s after ${r.lock.passes} pre-copy pass(es); final pass: ${r.lock.copied} copied (${formatBytes(r.lock.bytes)}), ${r.lock.flags} flag changes, ${r.lock.expunged} removed`,
    );
  if (r.droppedKeywords.length)
    lines.push(`  flags the destination cannot keep: ${r.droppedKeywords.join(' ')}`);
  for (const e of r.errors) lines.push(`  error: ${e}`);
  return lines.join('\n');
}

export function renderDryRun(r: DryRunResult): string {
  const out = [`${r.address}: dry run (nothing was changed)`];
  for (const f of r.folders) {
    const name = f.source === f.destination ? f.source : `${f.source} -> ${f.destination}`;
    const tags = [
      f.noselect ? 'container' : '',
      f.specialUse ?? '',
      f.existsOnDestination ? 'exists' : 'new',
    ]
      .filter(Boolean)
      .join(', ');
    out.push(
      `  ${name} [${tags}]: ${f.messages} msgs, ${formatBytes(f.bytes)}${f.alreadyCopied ? `, ${f.alreadyCopied} already copied` : ''}`,
    );
    for (const p of f.problems) out.push(`    problem: ${p}`);
  }
  for (const s of r.skippedFolders) out.push(`  skipped ${s.source}: ${s.reason}`);
  for (const p of r.problems) out.push(`  problem: ${p}`);
  out.push(
    `  total: ${r.totals.folders} folders, ${r.totals.messages} msgs, ${formatBytes(r.totals.bytes)}; to copy ${r.totals.toCopy} msgs (${formatBytes(r.totals.toCopyBytes)}), about ${formatDuration(r.etaSeconds)} at ${r.assumedRate.messagesPerSecond} msg/s`,
  );
  return `${out.join('\n')}\n`;
}
