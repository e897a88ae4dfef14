/**
 * A run's marks on the account record: its start (pre-copy, still served by the source),
 * the lock of its switch, and its outcome. Shared by the IMAP path and the POP3 fallback.
 */
import { OperatorError } from '../errors.js';
import type { StateStore, TransferLock } from '../state/types.js';
import type { AccountResult } from './result.js';

/**
 * The run starts: counted as an attempt, marked pre-copying. The state is left as it is
 * (captured, failed, migrated...): the gateway keeps serving the account as before.
 */
export async function recordStart(
  store: StateStore,
  address: string,
  startedAt: string,
): Promise<void> {
  await store.update(address, (rec) => {
    rec.attempts = (rec.attempts ?? 0) + 1;
    rec.transferPhase = 'pre-copying';
    rec.transfer = {
      ...(rec.transfer ?? { messages: 0, bytes: 0, copied: 0, skipped: 0, failed: 0 }),
      startedAt,
      finishedAt: undefined,
    };
  });
}

/** The operator excluded the account while it was being pre-copied: it stays on the source. */
export function excludedError(address: string): OperatorError {
  return new OperatorError(
    `${address} was excluded during its pre-copy; it stays on the source`,
    'autoport accounts include, then migrate it again',
    'EEXCLUDED',
  );
}

/**
 * Lock the account for the switch (state transferring: logins refused, mail deferred),
 * unless the operator excluded it meanwhile: checked in the same store update, so an
 * exclude is never lost behind the lock.
 */
export async function recordLock(store: StateStore, address: string): Promise<void> {
  await store.update(address, (rec) => {
    if (rec.state === 'excluded') throw excludedError(address);
    rec.state = 'transferring';
    rec.transferPhase = 'switching';
  });
}

/**
 * The run's outcome on the record; this ends the lock. A failed run of an account already
 * handed over to the user (a re-run or repair after the move) leaves it `migrated`:
 * `failed` would send the user back to the source, whose mailbox no longer has their mail
 * since the move. An account the operator excluded during the run stays excluded.
 */
export async function record(
  store: StateStore,
  address: string,
  result: AccountResult,
  now: () => Date,
  handedOver = false,
): Promise<void> {
  await store.update(address, (rec) => {
    rec.transferPhase = undefined;
    const excluded = rec.state === 'excluded';
    if (!excluded) rec.state = result.ok || handedOver ? 'migrated' : 'failed';
    rec.reason = excluded
      ? rec.reason
      : result.ok
        ? undefined
        : (result.errors[0] ?? 'some messages were not copied; see the ledger');
    if (!result.ok && !excluded)
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
      lock: result.lock ?? rec.transfer?.lock,
      swept: rec.transfer?.swept,
    };
  });
}

export type { TransferLock };
