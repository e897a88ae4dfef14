/**
 * What changed on the source folder since the checkpoint: messages to copy, flag changes
 * to apply, messages expunged on the source to remove from the destination.
 *
 * With CONDSTORE (RFC 7162) on the source and a modseq from a complete earlier run, only
 * what changed is listed: QRESYNC's SELECT reports expunged UIDs (VANISHED) and changed
 * flags at once; CONDSTORE alone needs `CHANGEDSINCE` for flags and a `UID SEARCH` for what
 * still exists. Otherwise (first run, no CONDSTORE, NOMODSEQ, earlier failures) one
 * `UID FETCH 1:* (UID FLAGS)` listing is compared with the map. Only the source's modseqs
 * matter here: the source is authoritative while an account is being moved, so the
 * destination's CONDSTORE would add nothing.
 */
import type { CheckpointState } from './checkpoint.js';
import type { ImapSession } from './imap-session.js';
import { filterFlags, flagKey, type FlagPolicy } from './flags.js';
import { listMeta, searchUids, type MailboxInfo } from './mailbox.js';

export type DeltaMode = 'qresync' | 'condstore' | 'listing';

export interface SourceDelta {
  mode: DeltaMode;
  /** source UIDs to copy, ascending */
  toCopy: number[];
  /** listed sizes of toCopy (RFC822.SIZE: for progress and ETA only) */
  listedBytes: number;
  /** mapped source UIDs whose filtered flags differ from what the destination has */
  flagChanges: Map<number, string[]>;
  /** mapped source UIDs no longer on the source */
  expunged: number[];
  /** messages on the source (EXISTS at EXAMINE) */
  exists: number;
  /** highest source UID this run considered */
  lastUid: number;
}

export interface DeltaOptions {
  /** 'auto' uses QRESYNC/CONDSTORE when possible; 'listing' always lists everything */
  incremental: 'auto' | 'listing';
}

/** Can this run use modseqs? The caller opened the mailbox with QRESYNC when this said so. */
export function deltaMode(
  src: ImapSession,
  cp: CheckpointState,
  box: MailboxInfo | null,
  opts: DeltaOptions,
): DeltaMode {
  if (opts.incremental === 'listing' || !cp.modseq || cp.srcUv === 0) return 'listing';
  if (box && (box.noModseq || box.uidValidity !== cp.srcUv)) return 'listing';
  if (src.enabled.has('QRESYNC')) return 'qresync';
  if (src.has('CONDSTORE') || src.has('QRESYNC')) return 'condstore';
  return 'listing';
}

export async function sourceDelta(
  src: ImapSession,
  box: MailboxInfo,
  cp: CheckpointState,
  policy: FlagPolicy,
  mode: DeltaMode,
): Promise<SourceDelta> {
  const delta: SourceDelta = {
    mode,
    toCopy: [],
    listedBytes: 0,
    flagChanges: new Map(),
    expunged: [],
    exists: box.exists,
    lastUid: cp.lastUid,
  };
  const noteFlags = (uid: number, flags: string[]): void => {
    const e = cp.map.get(uid);
    if (!e) return;
    const kept = filterFlags(flags, policy).kept;
    if (flagKey(kept).toLowerCase() !== e.f.toLowerCase()) delta.flagChanges.set(uid, kept);
  };

  if (mode === 'listing') {
    if (box.exists === 0) {
      delta.expunged = [...cp.map.keys()];
      return delta;
    }
    const listing = await listMeta(src, '1:*', 'UID FLAGS RFC822.SIZE');
    const present = new Set<number>();
    for (const m of listing.messages) {
      present.add(m.uid);
      if (m.uid > delta.lastUid) delta.lastUid = m.uid;
      if (cp.map.has(m.uid)) noteFlags(m.uid, m.flags ?? []);
      else if (!cp.gone.has(m.uid)) {
        delta.toCopy.push(m.uid);
        delta.listedBytes += m.size ?? 0;
      }
    }
    for (const uid of cp.map.keys()) if (!present.has(uid)) delta.expunged.push(uid);
    delta.toCopy.sort((a, b) => a - b);
    return delta;
  }

  const modseq = cp.modseq as string;
  if (mode === 'qresync') {
    delta.expunged = box.vanished.filter((uid) => cp.map.has(uid));
    for (const m of box.changed) if (m.uid && m.flags) noteFlags(m.uid, m.flags);
  } else if (cp.lastUid > 0) {
    const changed = await listMeta(src, `1:${cp.lastUid}`, 'UID FLAGS', { changedSince: modseq });
    for (const m of changed.messages) if (m.flags) noteFlags(m.uid, m.flags);
    const present = new Set(await searchUids(src, `UID 1:${cp.lastUid}`));
    for (const uid of cp.map.keys()) if (!present.has(uid)) delta.expunged.push(uid);
  }
  // new messages: `n:*` always returns the highest message, even below n (RFC 3501 6.4.8)
  if (box.exists > 0) {
    const fresh = await listMeta(src, `${cp.lastUid + 1}:*`, 'UID FLAGS RFC822.SIZE');
    for (const m of fresh.messages) {
      if (m.uid <= cp.lastUid || cp.map.has(m.uid)) continue;
      delta.toCopy.push(m.uid);
      delta.listedBytes += m.size ?? 0;
      if (m.uid > delta.lastUid) delta.lastUid = m.uid;
    }
  }
  delta.toCopy.sort((a, b) => a - b);
  return delta;
}
