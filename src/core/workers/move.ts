/** One move of the worker pool (worker-pool.ts): the copy engine's run, then its outcome on the record. */
import type { EventBus, TransferProgress } from '../bus.js';
import type { GatewayLimits } from '../limits.js';
import type { AccountRecord, StateStore, TransferLock } from '../state/types.js';
import type { LateMailSweeper } from './late-mail.js';
import type { MigrateFn, MigrateOutcome, Running } from './worker-types.js';

/** copy progress reaches the bus at most this often per account (phase changes always do) */
const PROGRESS_EVERY_MS = 250;

export interface OutcomeDeps {
  store: StateStore;
  limits: GatewayLimits;
  sweeper: LateMailSweeper | undefined;
  now: () => number;
}

/**
 * Still due for a move (as StateStore.due answers), read again under the claim: another
 * node may have moved it since the store named it. One with a move phase is being moved.
 */
export function isDue(rec: AccountRecord, limits: GatewayLimits, now: number): boolean {
  if (!rec.credentials || rec.transferPhase) return false;
  if (rec.state === 'captured') return true;
  if (rec.state !== 'failed') return false;
  if ((rec.attempts ?? 0) >= limits.maxTransferAttempts) return false;
  return !rec.nextAttemptAt || Date.parse(rec.nextAttemptAt) <= now;
}

export interface CopyDeps {
  bus: EventBus;
  migrate: MigrateFn;
  now: () => number;
}

/** The copy engine's run, its progress on the bus (throttled); a throw is a failed outcome. */
export async function copy(
  deps: CopyDeps,
  entry: Running,
  req: { address: string; password: string },
  onLocked: () => void,
): Promise<MigrateOutcome> {
  const { address } = req;
  let lastProgress = 0;
  let lastPhase = '';
  const onProgress = (p: TransferProgress): void => {
    const t = deps.now();
    const key = `${p.folder}\0${p.phase}`;
    if (key === lastPhase && t - lastProgress < PROGRESS_EVERY_MS) return;
    lastProgress = t;
    lastPhase = key;
    deps.bus.emit({ type: 'transfer.progress', at: new Date(t).toISOString(), address, ...p });
  };
  try {
    return await deps.migrate(req, entry.controller.signal, { onProgress, onLocked });
  } catch (err) {
    // a move that failed after its switch carries its lock on the error (migrate.ts)
    const lock = (err as { lock?: TransferLock }).lock;
    return { ok: false, detail: (err as Error).message, ...(lock ? { lock } : {}) };
  }
}

/** The outcome on the record, decided inside the update (the operator may act meanwhile). */
export async function recordOutcome(
  deps: OutcomeDeps,
  entry: Running,
  address: string,
  outcome: MigrateOutcome,
  attempt: number,
): Promise<MigrateOutcome> {
  if (entry.aborted) {
    const aborted = { ok: false, detail: `aborted (${entry.aborted})`, lock: outcome.lock };
    // This node lost the cluster: another node may hold the account by now and be moving
    // it; only while the claim is still ours is the record ours to write. Otherwise the
    // node that claims it repairs what the abort left (orphans.ts).
    if (entry.aborted === 'lost' && !(await deps.store.cluster.claim(address).catch(() => false)))
      return aborted;
    // Our own abort (shutdown, immediate timeout, exclude, lost): not the account's fault;
    // the copy resumes from its checkpoints next time. An excluded account stays so; a
    // migrated one (the abort came after its switch) stays migrated.
    await deps.store.update(address, (r) => {
      r.transferPhase = undefined;
      if (r.state !== 'excluded' && r.state !== 'migrated') r.state = 'captured';
      r.attempts = Math.max(0, (r.attempts ?? 1) - 1);
    });
    return aborted;
  }
  if (outcome.ok) await deps.sweeper?.schedule(address);
  await deps.store.update(address, (r) => {
    if (outcome.ok) {
      r.state = 'migrated';
      return;
    }
    // excluded at the switch, or a re-run of an account already handed over to the
    // user (record() kept it migrated): neither goes back in the retry queue
    if (r.state === 'excluded' || r.state === 'migrated') return;
    const wait = Math.min(
      deps.limits.retryMaxMs,
      deps.limits.retryBaseMs * 2 ** Math.max(0, (r.attempts ?? attempt) - 1),
    );
    r.state = 'failed';
    r.reason ??= outcome.detail;
    r.nextAttemptAt = new Date(deps.now() + wait).toISOString();
  });
  return outcome;
}
