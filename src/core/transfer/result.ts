/**
 * What a transfer reports: progress events while it runs and a typed result at the end.
 * The migrate command's human and --json renderers, the proxy's worker pool and the TUI
 * all consume these shapes. Pure functions only.
 */
import type { CopyCounters, FolderCopyResult, FolderProgressEvent } from './copy/folder-copy.js';
import type { DiffCause, VerifyResult } from './copy/verify.js';
import type { TransferLock } from '../state/types.js';
import type { FolderPlan, FolderPlanEntry } from './types.js';

/** copy: a pre-copy pass (the source still serves the user); switch: the locked final pass */
export type MigratePhase = 'provision' | 'plan' | 'copy' | 'switch';

export type MigrateEvent =
  | { type: 'phase'; address: string; phase: MigratePhase }
  | { type: 'plan'; address: string; plan: FolderPlan }
  | { type: 'progress'; address: string; progress: FolderProgressEvent }
  | { type: 'folder-done'; address: string; folder: FolderSummary }
  | { type: 'warning'; address: string; message: string }
  | { type: 'done'; address: string; result: AccountResult };

export interface FolderSummary extends CopyCounters {
  source: string;
  destination: string;
  mode?: string;
  extra: number;
  /** copies found missing on the destination and made again (only when there were any) */
  restored?: number;
  droppedFlags: string[];
  verify?: Omit<VerifyResult, 'folder'>;
  /** the folder could not be copied at all */
  error?: string;
}

export interface Totals extends CopyCounters {
  folders: number;
}

export interface AccountResult {
  address: string;
  ok: boolean;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  folders: FolderSummary[];
  totals: Totals;
  droppedKeywords: string[];
  verify?: { ok: boolean; differences: number; byCause: Partial<Record<DiffCause, number>> };
  errors: string[];
  /** source mailboxes the plan left out, with why */
  skippedFolders?: Array<{ source: string; reason: string }>;
  /** the switch: lock duration and what the final pass moved (absent when it never ran) */
  lock?: TransferLock;
}

export function folderSummary(
  entry: FolderPlanEntry,
  r: FolderCopyResult | undefined,
  v?: VerifyResult,
): FolderSummary {
  const s: FolderSummary = {
    source: entry.source,
    destination: entry.destination,
    mode: r?.mode,
    messages: r?.messages ?? 0,
    bytes: r?.bytes ?? 0,
    copied: r?.copied ?? 0,
    copiedBytes: r?.copiedBytes ?? 0,
    matched: r?.matched ?? 0,
    skipped: r?.skipped ?? 0,
    failed: r?.failed ?? 0,
    flagsUpdated: r?.flagsUpdated ?? 0,
    expunged: r?.expunged ?? 0,
    extra: r?.extra ?? 0,
    droppedFlags: r?.droppedFlags ?? [],
  };
  if (r?.restored) s.restored = r.restored;
  if (v) {
    const { folder: _folder, ...rest } = v;
    s.verify = rest;
  }
  return s;
}

export function totalsOf(folders: readonly FolderSummary[]): Totals {
  const t: Totals = {
    folders: folders.length,
    messages: 0,
    bytes: 0,
    copied: 0,
    copiedBytes: 0,
    matched: 0,
    skipped: 0,
    failed: 0,
    flagsUpdated: 0,
    expunged: 0,
  };
  for (const f of folders) {
    t.messages += f.messages;
    t.bytes += f.bytes;
    t.copied += f.copied;
    t.copiedBytes += f.copiedBytes;
    t.matched += f.matched;
    t.skipped += f.skipped;
    t.failed += f.failed;
    t.flagsUpdated += f.flagsUpdated;
    t.expunged += f.expunged;
  }
  return t;
}

const FAILING: readonly DiffCause[] = ['missing', 'content', 'size', 'flags', 'date'];

export function accountResult(
  address: string,
  startedAt: string,
  finishedAt: string,
  folders: FolderSummary[],
  droppedKeywords: string[],
  errors: string[],
  plan?: FolderPlan,
): AccountResult {
  const totals = totalsOf(folders);
  const byCause: Partial<Record<DiffCause, number>> = {};
  let verified = false;
  for (const f of folders) {
    if (!f.verify) continue;
    verified = true;
    for (const [c, n] of Object.entries(f.verify.differences) as [DiffCause, number][])
      byCause[c] = (byCause[c] ?? 0) + n;
  }
  const differences = FAILING.reduce((n, c) => n + (byCause[c] ?? 0), 0);
  const verify = verified ? { ok: differences === 0, differences, byCause } : undefined;
  const folderErrors = folders.some((f) => f.error);
  const ok = errors.length === 0 && !folderErrors && totals.failed === 0 && (verify?.ok ?? true);
  const result: AccountResult = {
    address,
    ok,
    startedAt,
    finishedAt,
    durationMs: Date.parse(finishedAt) - Date.parse(startedAt),
    folders: [...folders].sort((a, b) => (plan ? order(plan, a) - order(plan, b) : 0)),
    totals,
    droppedKeywords: [...new Set(droppedKeywords)].sort(),
    verify,
    errors,
  };
  if (plan?.skipped?.length) result.skippedFolders = plan.skipped;
  return result;
}

/** What one pass changed on the destination: messages and bytes written, flags, expunges. */
export interface PassMoved {
  copied: number;
  bytes: number;
  flags: number;
  expunged: number;
}

export function passMoved(folders: readonly FolderSummary[]): PassMoved {
  const t = totalsOf(folders);
  return {
    copied: t.copied + t.matched,
    bytes: t.copiedBytes,
    flags: t.flagsUpdated,
    expunged: t.expunged,
  };
}

/**
 * One folder over the passes of a run: what each pass did adds up; the state of the
 * folder (messages, bytes, what is not copied, extra, verify) is the last pass's. The
 * last pass hashes only what it wrote, so content differences found earlier are kept.
 */
export function mergeFolder(
  earlier: FolderSummary | undefined,
  later: FolderSummary,
): FolderSummary {
  if (!earlier) return later;
  const m: FolderSummary = {
    ...later,
    copied: earlier.copied + later.copied,
    copiedBytes: earlier.copiedBytes + later.copiedBytes,
    matched: earlier.matched + later.matched,
    flagsUpdated: earlier.flagsUpdated + later.flagsUpdated,
    expunged: earlier.expunged + later.expunged,
    droppedFlags: [...new Set([...earlier.droppedFlags, ...later.droppedFlags])].sort(),
  };
  const restored = (earlier.restored ?? 0) + (later.restored ?? 0);
  if (restored) m.restored = restored;
  const content = earlier.verify?.differences.content ?? 0;
  if (m.verify && content) {
    const differences = { ...m.verify.differences };
    differences.content = (differences.content ?? 0) + content;
    m.verify = { ...m.verify, ok: false, differences };
  }
  return m;
}

/** The folders of a run: each pass's summaries folded in, in the order they came. */
export function mergePasses(passes: readonly (readonly FolderSummary[])[]): FolderSummary[] {
  const by = new Map<string, FolderSummary>();
  for (const pass of passes)
    for (const f of pass) by.set(f.source, mergeFolder(by.get(f.source), f));
  return [...by.values()];
}

function order(plan: FolderPlan, f: FolderSummary): number {
  return plan.entries.findIndex((e) => e.source === f.source);
}
