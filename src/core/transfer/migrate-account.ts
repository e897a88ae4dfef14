/**
 * Move one account: provision it on the destination, log in to both sides, plan and
 * create the folders, copy every selectable folder (several at once, one connection pair
 * each), verify, and keep the account record up to date. Progress goes out as events so
 * the migrate command, the proxy's worker pool and the TUI can all show it.
 */
import type { ImapFlow } from 'imapflow';
import type { Config } from '../config/types.js';
import { OperatorError } from '../errors.js';
import type { Provisioner } from '../provision/types.js';
import { waitForLogin } from '../provision/wait.js';
import { sideFilePath } from '../state/side-files.js';
import type { FolderProgress, StateStore } from '../state/types.js';
import { Checkpoint } from './copy/checkpoint.js';
import { openFlow, openSession, tryLogin, type SideAccess } from './copy/connect.js';
import { isTransient, type ImapError } from './copy/errors.js';
import {
  copyFolder,
  DEFAULT_TUNING,
  newFolderStats,
  type CopyTuning,
  type FolderCopyResult,
} from './copy/folder-copy.js';
import type { ImapSession, SessionTimeouts } from './copy/imap-session.js';
import type { Ledger } from './copy/ledger.js';
import { runPool } from './copy/pool.js';
import { AdaptiveLimit, Backoff, sleep } from './copy/throttle.js';
import { verifyFolder } from './copy/verify.js';
import { createFolders, listSide, planFolders } from './folders/index.js';
import { isHandedOver, lostPolicy, markHandedOver } from './handover.js';
import { migrateOverPop3 } from './migrate-pop3.js';
import { copiesOverPop3 } from './pop3/connect.js';
import { keepPop3Uidls } from './uidl/record.js';
import type { CreateFoldersResult } from './folders/create.js';
import type { PlanSide } from './folders/plan.js';
import {
  accountResult,
  folderSummary,
  type AccountResult,
  type FolderSummary,
  type MigrateEvent,
} from './result.js';
import type { FolderPlan, FolderPlanEntry } from './types.js';

export type { AccountResult, FolderSummary, MigrateEvent } from './result.js';

export interface FolderOps {
  list(client: ImapFlow): Promise<PlanSide>;
  plan(src: PlanSide, dst: PlanSide): FolderPlan;
  create(client: ImapFlow, plan: FolderPlan): Promise<CreateFoldersResult>;
}

export const DEFAULT_FOLDER_OPS: FolderOps = {
  list: listSide,
  plan: (s, d) => planFolders(s, d),
  create: createFolders,
};

export interface MigrateDeps {
  config: Config;
  store: StateStore;
  ledger: Ledger;
  /** creates the account on the destination; omit to skip provisioning */
  provisioner?: Provisioner;
  folders?: FolderOps;
  onEvent?: (e: MigrateEvent) => void;
  signal?: AbortSignal;
  tuning?: Partial<CopyTuning>;
  /** hash again on the destination: what this run wrote (default), everything, or nothing */
  verify?: 'written' | 'all' | 'none';
  /** copy again what is missing on the destination, also what the user deleted there after
   * the account was migrated (see handover.ts) */
  repair?: boolean;
  now?: () => Date;
}

export interface MigrateRequest {
  address: string;
  /** the user's password at the source (and, once provisioned, at the destination) */
  password: string;
}

export function timeoutsOf(config: Config): SessionTimeouts {
  return {
    connectMs: config.timeouts.connectMs,
    greetingMs: config.timeouts.greetingMs,
    commandMs: config.timeouts.commandMs,
  };
}

export function sides(
  config: Config,
  req: MigrateRequest,
): { source: SideAccess; destination: SideAccess } {
  if (!config.source.imap) throw new Error('source.imap is required for an IMAP transfer');
  return {
    source: {
      label: 'source',
      endpoint: config.source.imap,
      credentials: { user: req.address, password: req.password },
    },
    destination: destinationAccess(config, req),
  };
}

/** The destination as the copy logs in to it: as the user, or as the master user for the user. */
export function destinationAccess(config: Config, req: MigrateRequest): SideAccess {
  if (!config.destination.imap) throw new Error('destination.imap is required for a transfer');
  const master = config.destination.master;
  return {
    label: 'destination',
    endpoint: config.destination.imap,
    credentials: master
      ? {
          user: req.address,
          password: req.password,
          master: { user: master.user, password: master.password, separator: master.separator },
        }
      : { user: req.address, password: req.password },
  };
}

interface Slot {
  src?: ImapSession;
  dst?: ImapSession;
}

export async function migrateAccount(
  req: MigrateRequest,
  deps: MigrateDeps,
): Promise<AccountResult> {
  // a source without IMAP (or with it switched off): the inbox over POP3 (migrate-pop3.ts)
  if (copiesOverPop3(deps.config)) return migrateOverPop3(req, deps);
  const now = deps.now ?? (() => new Date());
  const emit = (e: MigrateEvent): void => deps.onEvent?.(e);
  const address = req.address.toLowerCase();
  const startedAt = now().toISOString();
  const tuning: CopyTuning = { ...DEFAULT_TUNING, ...deps.tuning };
  const timeouts = timeoutsOf(deps.config);
  const { source, destination } = sides(deps.config, req);
  const ledger = deps.ledger.forAccount(address);
  const folders: FolderSummary[] = [];
  const errors: string[] = [];
  const dropped = new Set<string>();
  const handedOver = await isHandedOver(deps.store, address, deps.store.get(address)?.state);
  const lost = lostPolicy(handedOver, deps.repair ?? false);
  deps.store.update(address, (rec) => {
    rec.state = 'transferring';
    rec.attempts = (rec.attempts ?? 0) + 1;
    rec.transfer = {
      ...(rec.transfer ?? { messages: 0, bytes: 0, copied: 0, skipped: 0, failed: 0 }),
      startedAt,
      finishedAt: undefined,
    };
  });
  let plan: FolderPlan | undefined;
  try {
    // the source must accept the password before it is written anywhere
    if (!(await tryLogin(source, timeouts))) {
      throw new OperatorError(
        `the source refused the password of ${req.address}`,
        'capture it again through the gateway, or pass the right one with --password-stdin',
        'EAUTH',
      );
    }
    if (deps.provisioner && deps.provisioner.kind !== 'none') {
      emit({ type: 'phase', address, phase: 'provision' });
      await deps.provisioner.provision(address, req.password);
      const asUser: SideAccess = {
        ...destination,
        credentials: { user: req.address, password: req.password },
      };
      await waitForLogin(() => tryLogin(asUser, timeouts));
    }
    emit({ type: 'phase', address, phase: 'plan' });
    plan = await planAndCreate(
      source,
      destination,
      timeouts,
      deps.folders ?? DEFAULT_FOLDER_OPS,
      (msg) => {
        errors.push(msg);
        emit({ type: 'warning', address, message: msg });
      },
    );
    emit({ type: 'plan', address, plan });

    emit({ type: 'phase', address, phase: 'copy' });
    const work = plan.entries.filter((e) => !e.noselect && !e.nonExistent);
    const limit = new AdaptiveLimit(Math.max(1, deps.config.transfer.connections));
    const slots: Slot[] = [];
    // memory is shared by all connection pairs: each gets its part of the budget
    const share = Math.max(1, Math.min(limit.max, work.length));
    const slotTuning: CopyTuning = {
      ...tuning,
      maxQueueBytes: Math.floor(tuning.maxQueueBytes / share),
      maxInFlightBytes: Math.floor(tuning.maxInFlightBytes / share),
      // several batches must fit in flight, or the pipeline runs one command at a time
      maxBatchBytes: Math.min(
        tuning.maxBatchBytes,
        Math.floor(tuning.maxInFlightBytes / share / 4),
      ),
    };
    try {
      await runPool(work, limit, async (entry, slotNo) => {
        const slot = (slots[slotNo] ??= {});
        try {
          const summary = await copyWithRetry(entry, slot, slotTuning, limit);
          folders.push(summary);
          for (const f of summary.droppedFlags) dropped.add(f);
          emit({ type: 'folder-done', address, folder: summary });
        } catch (err) {
          const msg = `${entry.source}: ${(err as Error).message}`;
          errors.push(msg);
          const summary: FolderSummary = {
            ...folderSummary(entry, undefined),
            error: (err as Error).message,
          };
          folders.push(summary);
          emit({ type: 'folder-done', address, folder: summary });
        }
      });
    } finally {
      await Promise.all(slots.flatMap((s) => [s.src?.close(), s.dst?.close()]));
    }
  } catch (err) {
    errors.push((err as Error).message);
    const result = accountResult(
      address,
      startedAt,
      now().toISOString(),
      folders,
      [...dropped],
      errors,
      plan,
    );
    record(deps.store, address, result, now, handedOver);
    emit({ type: 'done', address, result });
    throw err;
  }
  const result = accountResult(
    address,
    startedAt,
    now().toISOString(),
    folders,
    [...dropped],
    errors,
    plan,
  );
  if (result.ok)
    await keepPop3Uidls(deps.config, deps.store, req, (m) =>
      emit({ type: 'warning', address, message: m }),
    );
  record(deps.store, address, result, now, handedOver);
  if (result.ok) await markHandedOver(deps.store, address, result.finishedAt);
  await deps.ledger.flush();
  emit({ type: 'done', address, result });
  return result;

  async function copyWithRetry(
    entry: FolderPlanEntry,
    slot: Slot,
    t: CopyTuning,
    limit: AdaptiveLimit,
  ): Promise<FolderSummary> {
    const side = sideFilePath(deps.store, address, `uidmap ${entry.source}`);
    const cp = await Checkpoint.open(side.absolute);
    const backoff = new Backoff();
    const stats = newFolderStats();
    try {
      for (;;) {
        try {
          slot.src ??= await openSession(source, timeouts, ['QRESYNC']);
          slot.dst ??= await openSession(destination, timeouts);
          const appendLimit = capabilityNumber(slot.dst, 'APPENDLIMIT');
          const r = await copyFolder(entry, {
            src: slot.src,
            dst: slot.dst,
            checkpoint: cp,
            ledger,
            tuning: t,
            appendLimit,
            signal: deps.signal,
            stats,
            lost,
            onProgress: (p) => emit({ type: 'progress', address, progress: p }),
          });
          if (r.keptDeleted > 0)
            emit({
              type: 'warning',
              address,
              message: `${entry.source}: ${r.keptDeleted} messages deleted on the destination since the account was migrated are left deleted; autoport migrate --repair copies them again`,
            });
          const v =
            deps.verify === 'none'
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
          saveFolder(entry, r, side.relative);
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
          emit({
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

  function saveFolder(entry: FolderPlanEntry, r: FolderCopyResult, uidMap: string): void {
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
      updatedAt: now().toISOString(),
    };
    deps.store.update(address, (rec) => {
      rec.folders[entry.source] = progress;
    });
  }
}

async function planAndCreate(
  source: SideAccess,
  destination: SideAccess,
  timeouts: SessionTimeouts,
  ops: FolderOps,
  warn: (msg: string) => void,
): Promise<FolderPlan> {
  const [sc, dc] = await Promise.all([openFlow(source, timeouts), openFlow(destination, timeouts)]);
  try {
    const [s, d] = await Promise.all([ops.list(sc), ops.list(dc)]);
    const plan = ops.plan(s, d);
    const created = await ops.create(dc, plan);
    for (const f of created.failed)
      warn(`${f.action} ${JSON.stringify(f.destination)} refused: ${f.reason}`);
    return plan;
  } finally {
    await Promise.all([sc.logout().catch(() => sc.close()), dc.logout().catch(() => dc.close())]);
  }
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

/**
 * The run's outcome on the record. A failed run of an account already handed over to the
 * user (a re-run or repair after the move) leaves it `migrated`: `failed` would send the
 * user back to the source, whose mailbox no longer has their mail since the move.
 */
export function record(
  store: StateStore,
  address: string,
  result: AccountResult,
  now: () => Date,
  handedOver = false,
): void {
  store.update(address, (rec) => {
    rec.state = result.ok || handedOver ? 'migrated' : 'failed';
    rec.reason = result.ok
      ? undefined
      : (result.errors[0] ?? 'some messages were not copied; see the ledger');
    if (!result.ok)
      rec.errors.push({ at: now().toISOString(), cause: 'transfer', detail: rec.reason });
    rec.transfer = {
      startedAt: result.startedAt,
      finishedAt: result.finishedAt,
      messages: result.totals.messages,
      bytes: result.totals.bytes,
      copied: result.totals.copied + result.totals.matched,
      skipped: result.totals.skipped,
      failed: result.totals.failed,
      droppedKeywords: result.droppedKeywords.length ? result.droppedKeywords : undefined,
      verify: result.verify
        ? { ok: result.verify.ok, differences: result.verify.differences, at: result.finishedAt }
        : undefined,
    };
  });
}
