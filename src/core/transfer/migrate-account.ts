/**
 * Move one account in two phases, so that the user hardly notices:
 *
 * 1. Pre-copy, while the source still serves the account (no lock, no session closed, mail
 *    still delivered there): provision it on the destination, then copy passes (copy-pass.ts)
 *    until one moves little (DEFAULT_PRECOPY). Each pass after the first copies only what
 *    changed since: new mail, flag changes, expunges. An exclude by the operator stops it
 *    here and leaves the account on the source.
 * 2. Switch: lock the account (state transferring: logins refused, mail deferred, the
 *    gateway closes its source sessions through onLocked), one last pass for what changed
 *    during the pre-copy, verify what it wrote, record the result: migrated, and unlocked.
 *    The lock lasts only that pass; its duration and what the pass moved go on the record.
 *
 * Every pass resumes from the folders' checkpoints, so a run killed in either phase starts
 * again where it stopped; a run killed during the pre-copy never locked anything.
 */
import { performance } from 'node:perf_hooks';
import { OperatorError } from '../errors.js';
import { waitForLogin } from '../provision/wait.js';
import type { TransferLock } from '../state/types.js';
import { tryLogin, type SideAccess } from './copy/connect.js';
import { DEFAULT_TUNING } from './copy/folder-copy.js';
import { copyPass, type AccountRun, type PassResult } from './copy-pass.js';
import { isHandedOver, lostPolicy, markHandedOver } from './handover.js';
import {
  DEFAULT_PRECOPY,
  sides,
  timeoutsOf,
  type MigrateDeps,
  type MigrateRequest,
} from './migrate-deps.js';
import { migrateOverPop3 } from './migrate-pop3.js';
import { excludedError, record, recordLock, recordStart } from './migrate-record.js';
import { copiesOverPop3 } from './pop3/connect.js';
import { keepPop3Uidls } from './uidl/record.js';
import {
  accountResult,
  mergePasses,
  passMoved,
  type AccountResult,
  type FolderSummary,
  type MigrateEvent,
} from './result.js';
import type { FolderPlan } from './types.js';

export type { AccountResult, FolderSummary, MigrateEvent } from './result.js';
export {
  DEFAULT_FOLDER_OPS,
  destinationAccess,
  sides,
  timeoutsOf,
  type FolderOps,
  type MigrateDeps,
  type MigrateRequest,
} from './migrate-deps.js';
export { record } from './migrate-record.js';

/** The passes of one run, folded into its result at the end. */
interface RunLog {
  passes: FolderSummary[][];
  errors: string[];
  plan?: FolderPlan;
  lock?: TransferLock;
  /** the account was locked for the switch: its record must be unlocked whatever happens */
  locked: boolean;
}

export async function migrateAccount(
  req: MigrateRequest,
  deps: MigrateDeps,
): Promise<AccountResult> {
  // a source without IMAP (or with it switched off): the inbox over POP3 (migrate-pop3.ts)
  if (copiesOverPop3(deps.config)) return migrateOverPop3(req, deps);
  const address = req.address.toLowerCase();
  const handedOver = await isHandedOver(
    deps.store,
    address,
    (await deps.store.get(address))?.state,
  );
  const run = openRun(req, deps, handedOver);
  const startedAt = run.now().toISOString();
  const log: RunLog = { passes: [], errors: [], locked: false };
  await recordStart(deps.store, run.address, startedAt);
  try {
    await checkAndProvision(run, req);
    const last = await preCopy(run, log);
    if (copiedAll(last)) await switchOver(run, req, log);
  } catch (err) {
    log.errors.push((err as Error).message);
    await finish(run, log, startedAt, handedOver);
    throw err;
  }
  const result = await finish(run, log, startedAt, handedOver);
  if (result.ok) await markHandedOver(deps.store, run.address, result.finishedAt);
  await deps.ledger.flush();
  return result;
}

export function openRun(req: MigrateRequest, deps: MigrateDeps, handedOver: boolean): AccountRun {
  const address = req.address.toLowerCase();
  const { source, destination } = sides(deps.config, req);
  return {
    deps,
    address,
    source,
    destination,
    timeouts: timeoutsOf(deps.config),
    tuning: { ...DEFAULT_TUNING, ...deps.tuning },
    ledger: deps.ledger.forAccount(address),
    lost: lostPolicy(handedOver, deps.repair ?? false),
    now: deps.now ?? (() => new Date()),
    emit: (e: MigrateEvent) => deps.onEvent?.(e),
  };
}

/** The source must accept the password before it is written anywhere. */
async function checkAndProvision(run: AccountRun, req: MigrateRequest): Promise<void> {
  const { deps, address } = run;
  if (!(await tryLogin(run.source, run.timeouts))) {
    throw new OperatorError(
      `the source refused the password of ${req.address}`,
      'capture it again through the gateway, or pass the right one with --password-stdin',
      'EAUTH',
    );
  }
  if (!deps.provisioner || deps.provisioner.kind === 'none') return;
  run.emit({ type: 'phase', address, phase: 'provision' });
  await deps.provisioner.provision(address, req.password);
  const asUser: SideAccess = {
    ...run.destination,
    credentials: { user: req.address, password: req.password },
  };
  await waitForLogin(() => tryLogin(asUser, run.timeouts));
}

/**
 * Copy passes while the source serves the account, until one moves little or the passes
 * run out; stops early on a pass that could not copy everything (the switch would only
 * lock the account to fail). Returns the last pass.
 */
async function preCopy(run: AccountRun, log: RunLog): Promise<PassResult> {
  const limits = { ...DEFAULT_PRECOPY, ...run.deps.precopy };
  for (let n = 1; ; n++) {
    await stopIfExcluded(run);
    run.emit({ type: 'phase', address: run.address, phase: n === 1 ? 'plan' : 'copy' });
    const pass = await copyPass(run);
    keep(log, pass);
    const moved = passMoved(pass.folders);
    const settled =
      moved.copied + moved.flags + moved.expunged < limits.settleMessages &&
      moved.bytes < limits.settleBytes;
    if (settled || n >= Math.max(1, limits.maxPasses) || !copiedAll(pass)) return pass;
  }
}

/** Lock, close the source sessions (onLocked), copy what changed, verify it. */
async function switchOver(run: AccountRun, req: MigrateRequest, log: RunLog): Promise<void> {
  const precopyPasses = log.passes.length;
  const at = run.now().toISOString();
  const t0 = performance.now();
  await recordLock(run.deps.store, run.address);
  log.locked = true;
  let pass: PassResult | undefined;
  try {
    run.emit({ type: 'phase', address: run.address, phase: 'switch' });
    await run.deps.onLocked?.();
    pass = await copyPass(run);
    keep(log, pass);
    // UIDLs are read once the source inbox no longer changes, before a POP3 client can
    // reach the destination (uidl/record.ts)
    if (verified(pass))
      await keepPop3Uidls(run.deps.config, run.deps.store, req, (m) =>
        run.emit({ type: 'warning', address: run.address, message: m }),
      );
  } finally {
    // the lock ends when finish() records the result, a few lines later
    log.lock = {
      at,
      ms: Math.round(performance.now() - t0),
      passes: precopyPasses,
      ...passMoved(pass?.folders ?? []),
    };
  }
}

function keep(log: RunLog, pass: PassResult): void {
  log.passes.push(pass.folders);
  log.errors.push(...pass.errors);
  log.plan = pass.plan;
}

/**
 * A pre-copy pass after which the switch can succeed: no error, nothing refused, every
 * copy it hashed again intact. Other differences its verify found (flags, expunges,
 * mail arriving) are the user's work during the pass: the next pass takes them over.
 */
function copiedAll(pass: PassResult): boolean {
  if (pass.errors.length) return false;
  return pass.folders.every(
    (f) =>
      !f.error && f.failed === 0 && !f.verify?.differences.content && !f.verify?.differences.size,
  );
}

/** The switch pass: the source no longer changes, so its verify must be clean. */
function verified(pass: PassResult): boolean {
  return copiedAll(pass) && pass.folders.every((f) => f.verify?.ok ?? true);
}

async function stopIfExcluded(run: AccountRun): Promise<void> {
  if ((await run.deps.store.get(run.address))?.state === 'excluded')
    throw excludedError(run.address);
  if (run.deps.signal?.aborted) throw run.deps.signal.reason;
}

/**
 * The run's result, recorded (this ends the lock when there was one). A run that never
 * got to the switch is not migrated: what its pre-copy found wrong is in its errors.
 */
async function finish(
  run: AccountRun,
  log: RunLog,
  startedAt: string,
  handedOver: boolean,
): Promise<AccountResult> {
  const errors = [...log.errors];
  const result = accountResult(
    run.address,
    startedAt,
    run.now().toISOString(),
    mergePasses(log.passes),
    [...new Set(log.passes.flat().flatMap((f) => f.droppedFlags))],
    errors,
    log.plan,
  );
  if (log.lock) result.lock = log.lock;
  else if (result.ok) {
    // cannot happen (a clean pre-copy always switches), but never migrated without a switch
    result.ok = false;
    result.errors.push('the pre-copy ended without a switch');
  }
  await record(run.deps.store, run.address, result, run.now, handedOver);
  run.emit({ type: 'done', address: run.address, result });
  return result;
}
