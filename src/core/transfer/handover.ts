/**
 * Whose is the destination mailbox: AutoPort's, or already the user's? It decides what a run
 * does with a copy missing on the destination (same destination UIDVALIDITY).
 *
 * Until the account is first recorded `migrated`, the gateway sends the user to the source,
 * so nothing but AutoPort writes to the destination: a missing copy was lost (an operator
 * emptied a folder, a restore from backup) and is made again. From then on the destination
 * is the user's mailbox and a missing copy is one the user deleted: it stays deleted unless
 * the operator runs `autoport migrate --repair`. A destination folder recreated (new
 * UIDVALIDITY) is filled again in every case (see reconcile.ts).
 *
 * The account's state alone is not enough to tell: a re-run of a migrated account that is
 * killed leaves it `transferring`, and one that fails (the source refuses the password after
 * the move) leaves it `failed`, yet the user's deletions made before are still the user's.
 * So the first time an account is recorded migrated, a marker is kept in its side data
 * (state/side-data.ts: every node sees it), and it counts as handed over from then on.
 */
import type { AccountState, StateStore } from '../state/types.js';
import type { LostPolicy } from './copy/reconcile.js';

export const MARKER_KEY = 'handed over';

type HasSide = Pick<StateStore, 'side'>;

export async function isHandedOver(
  store: HasSide,
  address: string,
  state: AccountState | undefined,
): Promise<boolean> {
  if (state === 'migrated') return true;
  return (await store.side.read(address, MARKER_KEY)) !== undefined;
}

/** Called when the account is recorded migrated; the first time is the one kept. */
export async function markHandedOver(store: HasSide, address: string, at: string): Promise<void> {
  if ((await store.side.read(address, MARKER_KEY)) === undefined)
    await store.side.write(address, MARKER_KEY, { at });
}

export function lostPolicy(handedOver: boolean, repair: boolean): LostPolicy {
  if (repair) return 'restore-all';
  return handedOver ? 'respect' : 'restore';
}
