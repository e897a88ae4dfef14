/**
 * Bringing a folder's checkpoint in line with the servers before and after copying: changed
 * UIDVALIDITYs, destination messages above the watermark that the map does not know (see
 * checkpoint.ts for why that makes kill -9 safe), binding by hash, removing by UID.
 */
import type { Checkpoint } from './checkpoint.js';
import { fetchBodies } from './fetch-stream.js';
import type { CopyTuning } from './folder-copy.js';
import type { ImapSession } from './imap-session.js';
import { listMeta, type MailboxInfo } from './mailbox.js';
import { disposeBody } from './spill.js';
import { compressSet } from './wire.js';

/** Bring the checkpoint's idea of both folders in line with what the servers say now. */
export function reconcileHeads(cp: Checkpoint, sbox: MailboxInfo, dbox: MailboxInfo): void {
  const st = cp.state;
  if (st.srcUv !== 0 && st.srcUv !== sbox.uidValidity)
    cp.record({ t: 'rebase', srcUv: sbox.uidValidity });
  if (st.dstUv !== 0 && st.dstUv !== dbox.uidValidity)
    cp.record({ t: 'dstreset', dstUv: dbox.uidValidity });
  if (st.srcUv !== sbox.uidValidity || st.dstUv !== dbox.uidValidity) {
    cp.record({ t: 'head', srcUv: sbox.uidValidity, dstUv: dbox.uidValidity });
  }
}

/**
 * Hash every destination message at or above the watermark that the checkpoint does not
 * know, and put it into the pool (durably) so it can be matched instead of copied again.
 * Map entries whose destination UID is unknown are then bound by hash.
 */
export async function scanAboveWatermark(
  dst: ImapSession,
  cp: Checkpoint,
  tuning: CopyTuning,
): Promise<void> {
  const st = cp.state;
  if (st.watermark <= 0) return;
  const known = st.boundDestUids();
  for (const d of st.pool.keys()) known.add(d);
  const listing = await listMeta(dst, `${st.watermark}:*`, 'UID');
  const unknown = listing.messages
    .map((m) => m.uid)
    .filter((d) => d >= st.watermark && !known.has(d));
  if (unknown.length > 0) {
    for await (const m of fetchBodies(dst, unknown, { maxQueueBytes: tuning.maxQueueBytes })) {
      cp.record({ t: 'p', e: { d: m.uid, h: m.sha256, z: m.size, k: 'orphan' } });
      disposeBody(m.body);
    }
  }
  bindByHash(cp);
  cp.commit();
}

/** Map entries whose destination UID is unknown take a pool entry with the same content. */
export function bindByHash(cp: Checkpoint): void {
  const st = cp.state;
  for (const [s, e] of [...st.map]) {
    if (e.d !== 0) continue;
    const hit = st.findInPool(e.h, e.z);
    if (hit) cp.record({ t: 'm', s, e: { ...e, d: hit.d } });
    else cp.record({ t: 'x', s }); // not on the destination after all: copy it again
  }
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
