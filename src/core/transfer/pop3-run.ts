/**
 * The state of one POP3 fallback run (migrate-pop3.ts): its counters, and what it reads from
 * and writes to the account record (the copied UIDLs, the INBOX's progress, its summary).
 */
import type { FolderProgress } from '../state/types.js';
import type { SideAccess } from './copy/connect.js';
import type { SessionTimeouts } from './copy/session-types.js';
import type { AccountLedger } from './copy/ledger.js';
import type { VerifyResult } from './copy/verify.js';
import type { MigrateDeps } from './migrate-deps.js';
import type { Pop3ConnectOptions } from './pop3/index.js';
import type { InboxExpectation } from './pop3/verify-inbox.js';
import { folderSummary, type FolderSummary, type MigrateEvent } from './result.js';
import type { FolderPlan, FolderPlanEntry } from './types.js';

/** POP3 has one mailbox per account (the "maildrop", RFC 1939); it becomes the destination INBOX. */
export const MAILBOX = 'INBOX';

export const INBOX_ENTRY: FolderPlanEntry = {
  source: MAILBOX,
  segments: [MAILBOX],
  destination: MAILBOX,
  noselect: false,
  subscribed: true,
  existsOnDestination: true,
  problems: [],
};

/** The plan a POP3 copy follows, in the shape the IMAP planner produces. */
export const POP3_PLAN: FolderPlan = {
  source: { prefix: '', delimiter: null },
  destination: { prefix: '', delimiter: null },
  entries: [INBOX_ENTRY],
};

/** Counters of the inbox copy, kept across the attempts of one run. */
export interface RunStats {
  copied: number;
  copiedBytes: number;
  matched: number;
  /** keyed by message number and UIDL: appends refused, duplicated UIDLs */
  failures: Map<string, { uidl: string; reason: string }>;
  /** UIDLs this run could not copy at all (not retried within the run) */
  notCopied: Set<string>;
  /** destination UID -> the source bytes it must hold (read from the source this run) */
  expected: Map<number, InboxExpectation>;
  /** the source inbox as the last attempt listed it: UIDL -> message number */
  source: Map<string, number>;
  bytes: number;
  /** what the first listing left to copy, for the progress display */
  toCopy?: { messages: number; bytes: number };
  destUidValidity?: number;
}

export interface Run {
  deps: MigrateDeps;
  address: string;
  now: () => Date;
  emit: (e: MigrateEvent) => void;
  pop: Pop3ConnectOptions;
  destination: SideAccess;
  timeouts: SessionTimeouts;
  ledger: AccountLedger;
  st: RunStats;
}

/** The UIDLs the state says are copied, forgotten when the destination INBOX was recreated. */
export async function recordedUidls(
  run: Run,
  uidValidity: number,
): Promise<Record<string, number>> {
  const before = await run.deps.store.get(run.address);
  const was = before?.folders[MAILBOX]?.destUidValidity;
  // 0: STATUS gave none; then the recorded UIDs are trusted (the matcher still prevents doubles)
  const stale =
    uidValidity !== 0 &&
    was !== undefined &&
    was !== uidValidity &&
    Object.keys(before?.pop3Uidls ?? {}).length > 0;
  if (stale) {
    run.emit({
      type: 'warning',
      address: run.address,
      message: `the destination ${MAILBOX} was recreated (UIDVALIDITY ${was} -> ${uidValidity}): messages copied before are matched by content`,
    });
  }
  if (uidValidity !== 0) run.st.destUidValidity = uidValidity;
  const rec = await run.deps.store.update(run.address, (r) => {
    if (stale) r.pop3Uidls = {};
    const progress = r.folders[MAILBOX] ?? emptyProgress(run);
    r.folders[MAILBOX] = { ...progress, destUidValidity: run.st.destUidValidity ?? was };
  });
  return { ...(rec.pop3Uidls ?? {}) };
}

export function summaryOf(st: RunStats, v: VerifyResult | undefined): FolderSummary {
  return {
    ...folderSummary(INBOX_ENTRY, undefined, v),
    mode: 'pop3',
    messages: st.source.size,
    bytes: st.bytes,
    copied: st.copied,
    copiedBytes: st.copiedBytes,
    matched: st.matched,
    failed: st.failures.size,
    extra: v?.differences.extra ?? 0,
  };
}

export function emptyProgress(run: Run): FolderProgress {
  return {
    source: MAILBOX,
    destination: MAILBOX,
    messages: 0,
    bytes: 0,
    copied: 0,
    skipped: 0,
    failed: 0,
    updatedAt: run.now().toISOString(),
  };
}

export async function saveProgress(run: Run): Promise<void> {
  const { st } = run;
  await run.deps.store.update(run.address, (rec) => {
    const uidls = rec.pop3Uidls ?? {};
    rec.folders[MAILBOX] = {
      ...emptyProgress(run),
      destUidValidity: st.destUidValidity ?? rec.folders[MAILBOX]?.destUidValidity,
      messages: st.source.size,
      bytes: st.bytes,
      copied: [...st.source.keys()].filter((u) => u in uidls).length,
      failed: st.failures.size,
    };
  });
}
