/**
 * Moves no live node runs any more: a node died mid-move, or this one was restarted (the
 * JSON store: everything mid-move when it was opened). Each is claimed before it is
 * repaired, so a move another node is running is never touched: one in its pre-copy was
 * never locked and only loses its phase; one locked for its switch goes back to captured
 * (a pool moves it again), or to migrated when it had already been handed over to the user
 * (transfer/handover.ts).
 */
import type { Logger } from '../log/logger.js';
import type { StateStore } from '../state/types.js';
import { isHandedOver } from '../transfer/handover.js';
import type { Claims } from './claims.js';

/** orphans asked for at once; a round that fills it is followed by another */
const ORPHANS_PER_ROUND = 100;

export interface OrphanDeps {
  store: StateStore;
  logger: Logger;
  claims: Claims;
  /** the pool stopped: leave the rest for the next start */
  stopped: () => boolean;
}

/** Repair every orphan the store names now; returns how many were repaired. */
export async function repairOrphans(deps: OrphanDeps): Promise<number> {
  let repaired = 0;
  for (;;) {
    const orphans = await deps.store.cluster.orphans(ORPHANS_PER_ROUND);
    let round = 0;
    for (const o of orphans) {
      if (deps.stopped()) return repaired;
      if (await repairOne(deps, o.address)) round++;
    }
    repaired += round;
    // a full round may have more behind it; one that repaired nothing would repeat itself
    if (orphans.length < ORPHANS_PER_ROUND || round === 0) return repaired;
  }
}

async function repairOne(deps: OrphanDeps, address: string): Promise<boolean> {
  if (!(await deps.claims.take(address))) return false; // a live node has it after all
  try {
    // read again under the claim: its node may have finished it since orphans() answered
    const rec = await deps.store.get(address);
    if (!rec || (!rec.transferPhase && rec.state !== 'transferring')) return false;
    const handedOver = rec.state === 'transferring' && (await handedOverSafe(deps, address));
    await deps.store.update(address, (r) => {
      r.transferPhase = undefined;
      if (r.state === 'transferring') r.state = handedOver ? 'migrated' : 'captured';
    });
    deps.logger.info('repaired a move no node runs any more', {
      address,
      was: rec.state,
      phase: rec.transferPhase,
    });
    return true;
  } catch (err) {
    deps.logger.error('cannot repair an interrupted move; will retry', { address, err });
    return false;
  } finally {
    await deps.claims.give(address);
  }
}

async function handedOverSafe(deps: OrphanDeps, address: string): Promise<boolean> {
  try {
    return await isHandedOver(deps.store, address, undefined);
  } catch (err) {
    deps.logger.error('cannot tell whether an interrupted move was handed over', {
      address,
      err,
    });
    return false;
  }
}
