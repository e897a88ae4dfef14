/**
 * One pass over an account's folders: plan and create them on the destination, then copy
 * every selectable folder (several at once, one connection pair each), verify what the
 * pass wrote, and save each folder's progress on the record. The first pass copies
 * everything; later ones (pre-copy rounds, the switch) only what changed since, through the
 * checkpoint and the QRESYNC/CONDSTORE/listing delta (copy/incremental.ts).
 */
import { sideFilePath } from '../state/side-files.js';
import type { FolderProgress } from '../state/types.js';
import { Checkpoint } from './copy/checkpoint.js';
import { openFlowPair, openSession, type SideAccess } from './copy/connect.js';
import { isTransient, type ImapError } from './copy/errors.js';
import {
  copyFolder,
  newFolderStats,
  type CopyTuning,
  type FolderCopyResult,
} from './copy/folder-copy.js';
import type { ImapSession } from './copy/imap-session.js';
import type { SessionTimeouts } from './copy/session-types.js';
import type { AccountLedger } from './copy/ledger.js';
import type { LostPolicy } from './copy/reconcile.js';
import { runPool } from './copy/pool.js';
import { AdaptiveLimit, Backoff, sleep } from './copy/throttle.js';
import { verifyFolder } from './copy/verify.js';
import { DEFAULT_FOLDER_OPS, type MigrateDeps } from './migrate-deps.js';
import { folderSummary, type FolderSummary, type MigrateEvent } from './result.js';
import type { FolderPlan, FolderPlanEntry } from './types.js';

/** What every pass of one account's run shares. */
export interface AccountRun {
  deps: MigrateDeps;
  address: string;
  source: SideAccess;
  destination: SideAccess;
  timeouts: SessionTimeouts;
  tuning: CopyTuning;
  ledger: AccountLedger;
  lost: LostPolicy;
  /** a late-mail sweep: new source UIDs only, no verify (copy/folder-copy.ts) */
  newOnly?: boolean;
  now: () => Date;
  emit: (e: MigrateEvent) => void;
}

export interface PassResult {
  plan: FolderPlan;
  folders: FolderSummary[];
  errors: string[];
}

interface Slot {
  src?: ImapSession;
  dst?: ImapSession;
}

/** Plan, create what is missing, copy and verify every folder once. */
export async function copyPass(run: AccountRun): Promise<PassResult> {
  const errors: string[] = [];
  const plan = await planAndCreate(run, (msg) => {
    errors.push(msg);
    run.emit({ type: 'warning', address: run.address, message: msg });
  });
  run.emit({ type: 'plan', address: run.address, plan });
  const folders: FolderSummary[] = [];
  const work = plan.entries.filter((e) => !e.noselect && !e.nonExistent);
  const limit = new AdaptiveLimit(Math.max(1, run.deps.config.transfer.connections));
  const slots: Slot[] = [];
  const tuning = slotTuning(run.tuning, Math.max(1, Math.min(limit.max, work.length)));
  try {
    await runPool(work, limit, async (entry, slotNo) => {
      const slot = (slots[slotNo] ??= {});
      let summary: FolderSummary;
      try {
        summary = await copyWithRetry(run, entry, slot, tuning, limit);
      } catch (err) {
        errors.push(`${entry.source}: ${(err as Error).message}`);
        summary = { ...folderSummary(entry, undefined), error: (err as Error).message };
      }
      folders.push(summary);
      run.emit({ type: 'folder-done', address: run.address, folder: summary });
    });
  } finally {
    await Promise.all(slots.flatMap((s) => [s.src?.close(), s.dst?.close()]));
  }
  return { plan, folders, errors };
}

/** Memory is shared by all connection pairs: each gets its part of the budget. */
function slotTuning(tuning: CopyTuning, share: number): CopyTuning {
  return {
    ...tuning,
    maxQueueBytes: Math.floor(tuning.maxQueueBytes / share),
    maxInFlightBytes: Math.floor(tuning.maxInFlightBytes / share),
    // several batches must fit in flight, or the pipeline runs one command at a time
    maxBatchBytes: Math.min(tuning.maxBatchBytes, Math.floor(tuning.maxInFlightBytes / share / 4)),
  };
}

async function planAndCreate(run: AccountRun, warn: (msg: string) => void): Promise<FolderPlan> {
  const ops = run.deps.folders ?? DEFAULT_FOLDER_OPS;
  const [sc, dc] = await openFlowPair(run.source, run.destination, run.timeouts);
  try {
    const [s, d] = await Promise.all([ops.list(sc), ops.list(dc)]);
    const plan = run.newOnly ? await withoutUserDeleted(run, ops.plan(s, d)) : ops.plan(s, d);
    const created = await ops.create(dc, plan);
    for (const f of created.failed)
      warn(`${f.action} ${JSON.stringify(f.destination)} refused: ${f.reason}`);
    return plan;
  } finally {
    await Promise.all([sc.logout().catch(() => sc.close()), dc.logout().catch(() => dc.close())]);
  }
}

/**
 * A sweep (newOnly) does not recreate a folder copied before that is gone from the
 * destination: the user deleted it there since the switch, and it stays deleted.
 */
async function withoutUserDeleted(run: AccountRun, plan: FolderPlan): Promise<FolderPlan> {
  const copied = (await run.deps.store.get(run.address))?.folders ?? {};
  return {
    ...plan,
    entries: plan.entries.filter((e) => e.existsOnDestination || !copied[e.source]),
  };
}

/**
 * A checkpoint that is new here while the account's record says the folder was copied
 * before: another gateway node copied it (checkpoints stay on the node that copies) and
 * died, or has moved the account and this node runs its late-mail sweep; or the
 * checkpoint was moved away. The record, shared by every node, seeds it:
 *
 * - a sweep copies above the UID the move recorded, not the whole folder again;
 * - a move hashes the whole destination folder (watermark 1), so each source message
 *   already there is bound by content, not appended twice.
 */
async function seedFromRecord(run: AccountRun, entry: FolderPlanEntry, cp: Checkpoint) {
  const st = cp.state;
  if (st.srcUv !== 0 || st.dstUv !== 0 || st.map.size > 0 || st.watermark > 0) return;
  const rec = await run.deps.store.get(run.address);
  const done = rec?.folders[entry.source];
  if (run.newOnly) {
    if (done?.uidValidity === undefined || done.lastUid === undefined) return;
    cp.setHeads(done.uidValidity, done.destUidValidity ?? 0);
    cp.setProgress(done.lastUid, undefined);
    cp.commit();
    return;
  }
  // attempts counts this run too: more than one, an earlier run may have appended here
  if ((done?.copied ?? 0) > 0 || (rec?.attempts ?? 0) > 1) cp.setWatermark(1);
}

/** One folder, again after a transient error (a fresh connection pair, with back-off). */
async function copyWithRetry(
  run: AccountRun,
  entry: FolderPlanEntry,
  slot: Slot,
  t: CopyTuning,
  limit: AdaptiveLimit,
): Promise<FolderSummary> {
  const { deps, address } = run;
  const side = sideFilePath(deps.store, address, `uidmap ${entry.source}`);
  const cp = await Checkpoint.open(side.absolute);
  await seedFromRecord(run, entry, cp);
  const backoff = new Backoff();
  const stats = newFolderStats();
  try {
    for (;;) {
      try {
        slot.src ??= await openSession(run.source, run.timeouts, ['QRESYNC']);
        slot.dst ??= await openSession(run.destination, run.timeouts);
        const r = await copyFolder(entry, {
          src: slot.src,
          dst: slot.dst,
          checkpoint: cp,
          ledger: run.ledger,
          tuning: t,
          appendLimit: capabilityNumber(slot.dst, 'APPENDLIMIT'),
          signal: deps.signal,
          stats,
          lost: run.lost,
          newOnly: run.newOnly,
          onProgress: (p) => run.emit({ type: 'progress', address, progress: p }),
        });
        if (r.keptDeleted > 0)
          run.emit({
            type: 'warning',
            address,
            message: `${entry.source}: ${r.keptDeleted} messages deleted on the destination since the account was migrated are left deleted; autoport migrate --repair copies them again`,
          });
        const v =
          deps.verify === 'none' || run.newOnly
            ? undefined
            : await verifyFolder(slot.src, slot.dst, {
                folder: entry.source,
                state: cp.state,
                policy: r.policy,
                lastUid: r.lastUid,
                notCopied: r.notCopied,
                hashUids: deps.verify === 'all' ? 'all' : r.written,
                maxQueueBytes: t.maxQueueBytes,
              });
        limit.succeeded();
        await saveFolder(run, entry, r, side.relative);
        return folderSummary(entry, r, v);
      } catch (err) {
        cp.commit();
        if (!isTransient(err) || backoff.exhausted || deps.signal?.aborted) throw err;
        const e = err as ImapError;
        if (e.code === 'ETHROTTLE') limit.throttled();
        slot.src?.destroy();
        slot.dst?.destroy();
        slot.src = slot.dst = undefined;
        const wait = backoff.next(e.detail?.delayMs);
        run.emit({
          type: 'warning',
          address,
          message: `${entry.source}: ${e.message}; retrying in ${wait} ms`,
        });
        await sleep(wait, deps.signal);
      }
    }
  } finally {
    await cp.close();
  }
}

async function saveFolder(
  run: AccountRun,
  entry: FolderPlanEntry,
  r: FolderCopyResult,
  uidMap: string,
): Promise<void> {
  const progress: FolderProgress = {
    source: entry.source,
    destination: entry.destination,
    uidValidity: r.uidValidity,
    destUidValidity: r.destUidValidity,
    lastUid: r.lastUid,
    highestModseq: r.highestModseq,
    messages: r.messages,
    bytes: r.bytes,
    copied: r.copied + r.matched,
    skipped: r.skipped,
    failed: r.failed,
    uidMap,
    updatedAt: run.now().toISOString(),
  };
  await run.deps.store.update(run.address, (rec) => {
    rec.folders[entry.source] = progress;
  });
}

function capabilityNumber(s: ImapSession, name: string): number | undefined {
  for (const c of s.capabilities) {
    if (c.startsWith(`${name}=`)) {
      const n = Number(c.slice(name.length + 1));
      if (Number.isSafeInteger(n) && n > 0) return n;
    }
  }
  return undefined;
}
