/**
 * Bringing a folder's checkpoint in line with the servers before and after copying: changed
 * UIDVALIDITYs, destination messages above the watermark that the map does not know (see
 * checkpoint.ts for why that makes kill -9 safe), copies lost on the destination, binding by
 * hash, removing by UID.
 */
import type { Checkpoint } from './checkpoint.js';
import { fetchBodies } from './fetch-stream.js';
import type { ImapSession } from './imap-session.js';
import type { AccountLedger } from './ledger.js';
import { listMeta, type MailboxInfo } from './mailbox.js';
import { disposeBody } from './spill.js';
import type { CopyTuning } from './tuning.js';
import { compressSet } from './wire.js';

/** Bring the checkpoint's idea of both folders in line with what the servers say now. */
export function reconcileHeads(cp: Checkpoint, sbox: MailboxInfo, dbox: MailboxInfo): void {
  const st = cp.state;
  if (st.srcUv !== 0 && st.srcUv !== sbox.uidValidity) cp.sourceRecreated(sbox.uidValidity);
  if (st.dstUv !== 0 && st.dstUv !== dbox.uidValidity) cp.destinationRecreated(dbox.uidValidity);
  if (st.srcUv !== sbox.uidValidity || st.dstUv !== dbox.uidValidity)
    cp.setHeads(sbox.uidValidity, dbox.uidValidity);
}

/**
 * Hash every destination message at or above the watermark that the checkpoint does not
 * know, and put it into the pool (durably) so it can be matched instead of copied again.
 * Map entries whose destination UID is unknown are then bound by hash; returns how many were
 * not found (dropped from the map, to be copied again).
 */
export async function scanAboveWatermark(
  dst: ImapSession,
  cp: Checkpoint,
  tuning: CopyTuning,
): Promise<number> {
  const st = cp.state;
  if (st.watermark <= 0) return 0;
  const known = st.boundDestUids();
  for (const d of st.pool.keys()) known.add(d);
  const listing = await listMeta(dst, `${st.watermark}:*`, 'UID');
  const unknown = listing.messages
    .map((m) => m.uid)
    .filter((d) => d >= st.watermark && !known.has(d));
  if (unknown.length > 0) {
    for await (const m of fetchBodies(dst, unknown, { maxQueueBytes: tuning.maxQueueBytes })) {
      cp.addToPool({ d: m.uid, h: m.sha256, z: m.size, k: 'orphan' });
      disposeBody(m.body);
    }
  }
  const dropped = bindByHash(cp);
  cp.commit();
  return dropped;
}

/**
 * Map entries whose destination UID is unknown take a pool entry with the same content; the
 * others are not on the destination after all and are dropped to be copied again. Returns
 * how many were dropped.
 */
export function bindByHash(cp: Checkpoint): number {
  const st = cp.state;
  const notThere: number[] = [];
  for (const [s, e] of [...st.map]) {
    if (e.d !== 0) continue;
    const hit = st.findInPool(e.h, e.z);
    if (hit) cp.bind(s, { ...e, d: hit.d });
    else notThere.push(s);
  }
  copyAgain(cp, notThere);
  return notThere.length;
}

/**
 * Drop source UIDs from the map so this run copies them again. They are at or below the
 * checkpoint's lastUid, where a modseq delta (RFC 7162) never looks again: the modseq is
 * cleared, so the source is listed in full.
 */
export function copyAgain(cp: Checkpoint, sourceUids: readonly number[]): void {
  if (sourceUids.length === 0) return;
  for (const s of sourceUids) cp.forget(s);
  cp.setProgress(cp.state.lastUid, undefined);
}

/**
 * What to do with a copy that disappeared from the destination while the destination
 * folder kept its UIDVALIDITY (someone expunged it there):
 *  - 'restore': copy it again. Used while the account is not migrated: the gateway still
 *    sends the user to the source, so nobody but AutoPort writes to the destination and a
 *    missing copy was lost (an operator emptied the folder, a restore from backup, ...).
 *  - 'respect': once the account is migrated the destination is the user's mailbox, and a
 *    missing copy is one the user deleted. It is recorded as gone and never copied again;
 *    verify reports it as "deleted", which is not a difference.
 *  - 'restore-all' (`autoport migrate --repair`): copy again both what is missing now and
 *    what earlier runs recorded as deleted by the user.
 * A destination folder with a new UIDVALIDITY was recreated and is always filled again
 * (reconcileHeads, then scanAboveWatermark from UID 1); that is not decided here.
 */
export type LostPolicy = 'restore' | 'respect' | 'restore-all';

/**
 * Find mapped copies no longer on the destination and apply the policy. Returns the number
 * of source messages this run copies again and the number newly recorded as deleted.
 */
export async function reconcileLost(
  dst: ImapSession,
  cp: Checkpoint,
  dbox: MailboxInfo,
  policy: LostPolicy,
  ledger: AccountLedger,
  base: { folder: string; uidValidity: number },
): Promise<{ restored: number; deleted: number }> {
  const st = cp.state;
  if (st.map.size === 0 && (policy !== 'restore-all' || st.gone.size === 0))
    return { restored: 0, deleted: 0 };
  // a FETCH listing rather than SEARCH ALL: one short line per message, no single line
  // that grows with the folder
  const listing = dbox.exists > 0 ? (await listMeta(dst, '1:*', 'UID')).messages : [];
  const present = new Set(listing.map((m) => m.uid));
  const lost: number[] = [];
  for (const [s, e] of st.map) if (e.d > 0 && !present.has(e.d)) lost.push(s);
  if (policy === 'respect') {
    for (const s of lost) {
      ledger.record({
        ...base,
        uid: s,
        outcome: 'deleted',
        destUid: st.map.get(s)?.d,
        reason:
          'deleted on the destination after the account was migrated: not copied again (autoport migrate --repair copies it)',
      });
      cp.deletedByUser(s);
    }
    cp.commit();
    return { restored: 0, deleted: lost.length };
  }
  const again = policy === 'restore-all' ? [...lost, ...st.gone.keys()] : lost;
  copyAgain(cp, again);
  cp.commit();
  return { restored: again.length, deleted: 0 };
}

/**
 * After the copy: pool entries left from a source UIDVALIDITY change ("rebase") are our
 * copies of messages gone from the source, and an orphan with the same bytes as a bound
 * message is a surplus copy of ours (an APPEND a killed run had sent): both are removed.
 * Any other orphan is mail someone else put there: left alone, counted as extra.
 */
export async function removeSurplus(
  dst: ImapSession,
  cp: Checkpoint,
): Promise<{ expunged: number; extra: number }> {
  const st = cp.state;
  const out = { expunged: 0, extra: 0 };
  const bound = new Set([...st.map.values()].filter((e) => e.d !== 0).map((e) => `${e.h}:${e.z}`));
  const stale = [...st.pool.values()].filter((p) => p.k === 'rebase');
  const surplus = [...st.pool.values()].filter(
    (p) => p.k === 'orphan' && bound.has(`${p.h}:${p.z}`),
  );
  for (const group of [stale, surplus]) {
    if (
      group.length === 0 ||
      !(await expungeOnDestination(
        dst,
        group.map((p) => p.d),
      ))
    )
      continue;
    for (const p of group) {
      cp.removeFromPool(p.d);
      out.expunged++;
    }
  }
  for (const p of [...st.pool.values()]) {
    if (p.k === 'orphan') {
      cp.removeFromPool(p.d);
      out.extra++;
    }
  }
  return out;
}

/** Remove messages by UID. Without UIDPLUS that is impossible to do safely (a plain EXPUNGE
 * would also remove messages the source itself marked \Deleted), so nothing is removed. */
export async function expungeOnDestination(dst: ImapSession, destUids: number[]): Promise<boolean> {
  if (destUids.length === 0) return true;
  if (!dst.has('UIDPLUS')) return false;
  const set = compressSet(destUids);
  await dst.ok(`UID STORE ${set} +FLAGS.SILENT (\\Deleted)`);
  await dst.ok(`UID EXPUNGE ${set}`);
  return true;
}
