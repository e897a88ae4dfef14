/**
 * Verify one folder after copying: every source message (up to the UID the run considered)
 * is on the destination, with the same SHA-256, size, flags (as the destination can keep
 * them) and INTERNALDATE (compared as instants: a Maildir destination keeps the time, not
 * the zone). Differences are counted by cause, with a few UIDs as examples.
 */
import type { CheckpointState, MapEntry } from './checkpoint.js';
import { fetchBodies } from './fetch-stream.js';
import { filterFlags, flagKey, type FlagPolicy } from './flags.js';
import type { ImapSession } from './imap-session.js';
import { disposeBody } from './spill.js';
import { listMeta, type FetchedMessage } from './mailbox.js';

export type DiffCause =
  | 'missing'
  | 'content'
  | 'size'
  | 'flags'
  | 'date'
  | 'extra'
  | 'skipped'
  | 'failed'
  /** the user deleted the copy on the destination after the move (checkpoint "gone") */
  | 'deleted';

/** Causes that make a folder's verify fail; extra, skipped, failed, deleted are reported apart. */
export const FAILING_CAUSES: readonly DiffCause[] = ['missing', 'content', 'size', 'flags', 'date'];

export interface VerifyResult {
  folder: string;
  ok: boolean;
  /** source messages checked */
  checked: number;
  /** destination messages whose bytes were hashed again */
  hashed: number;
  differences: Partial<Record<DiffCause, number>>;
  /** up to 10 source UIDs (destination UIDs for "extra") per cause */
  examples: Partial<Record<DiffCause, number[]>>;
}

export interface VerifyInput {
  folder: string;
  state: CheckpointState;
  policy: FlagPolicy;
  /** highest source UID the copy considered: newer mail is for the next run */
  lastUid: number;
  /** source UIDs the copy skipped or failed */
  notCopied: Map<number, { outcome: 'skipped' | 'failed' }>;
  /** destination UIDs to hash again ('written': those written this run) */
  hashUids: number[] | 'all' | 'none';
  maxQueueBytes: number;
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

/** INTERNALDATE ("17-Jul-1996 02:44:25 -0700", RFC 3501 9) as epoch ms; NaN when malformed. */
export function parseInternalDate(s: string): number {
  const m =
    /^\s?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$/.exec(
      s.trim(),
    );
  if (!m) return NaN;
  const month = MONTHS.indexOf((m[2] as string).toLowerCase());
  if (month < 0) return NaN;
  const utc = Date.UTC(Number(m[3]), month, Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6]));
  const offset = (Number(m[8]) * 60 + Number(m[9])) * 60_000 * (m[7] === '-' ? -1 : 1);
  return utc - offset;
}

export async function verifyFolder(
  src: ImapSession,
  dst: ImapSession,
  input: VerifyInput,
): Promise<VerifyResult> {
  const { state: st, policy } = input;
  const result: VerifyResult = {
    folder: input.folder,
    ok: true,
    checked: 0,
    hashed: 0,
    differences: {},
    examples: {},
  };
  const note = (cause: DiffCause, uid: number): void => {
    result.differences[cause] = (result.differences[cause] ?? 0) + 1;
    const ex = (result.examples[cause] ??= []);
    if (ex.length < 10) ex.push(uid);
  };

  const srcList =
    input.lastUid > 0
      ? await listMeta(src, `1:${input.lastUid}`, 'UID FLAGS INTERNALDATE')
      : { messages: [] };
  const dstList = await listMeta(dst, '1:*', 'UID FLAGS INTERNALDATE RFC822.SIZE');
  const dstByUid = new Map<number, FetchedMessage>();
  for (const m of dstList.messages) dstByUid.set(m.uid, m);
  const entryByDest = new Map<number, { s: number; e: MapEntry }>();
  for (const [s, e] of st.map) if (e.d) entryByDest.set(e.d, { s, e });

  for (const sm of srcList.messages) {
    if (sm.uid > input.lastUid) continue;
    result.checked++;
    const nc = input.notCopied.get(sm.uid);
    if (nc) {
      note(nc.outcome, sm.uid);
      continue;
    }
    if (st.gone.has(sm.uid)) {
      note('deleted', sm.uid);
      continue;
    }
    const e = st.map.get(sm.uid);
    const dm = e?.d ? dstByUid.get(e.d) : undefined;
    if (!e || !dm) {
      note('missing', sm.uid);
      continue;
    }
    if (dm.size !== undefined && dm.size !== e.z) note('size', sm.uid);
    const want = flagKey(filterFlags(sm.flags ?? [], policy).kept).toLowerCase();
    if (flagKey(dm.flags ?? []).toLowerCase() !== want) note('flags', sm.uid);
    if (parseInternalDate(sm.internalDate ?? '') !== parseInternalDate(dm.internalDate ?? ''))
      note('date', sm.uid);
  }
  for (const dm of dstList.messages) if (!entryByDest.has(dm.uid)) note('extra', dm.uid);

  const toHash =
    input.hashUids === 'all'
      ? [...entryByDest.keys()]
      : input.hashUids === 'none'
        ? []
        : input.hashUids;
  if (toHash.length) {
    for await (const m of fetchBodies(dst, toHash, { maxQueueBytes: input.maxQueueBytes })) {
      result.hashed++;
      disposeBody(m.body);
      const be = entryByDest.get(m.uid);
      if (be && be.e.h && be.e.h !== m.sha256) note('content', be.s);
    }
  }
  result.ok = FAILING_CAUSES.every((c) => !result.differences[c]);
  return result;
}
