/**
 * Verify a POP3 copy: every message of the source inbox (as this run's UIDL listing
 * showed it) is recorded and present in the destination INBOX, and the messages whose
 * source bytes this run read (RETR) have on the destination the same SHA-256, size and
 * INTERNALDATE. The destination is only EXAMINEd. Differences are counted by cause as in
 * the IMAP verify (copy/verify.ts); examples are POP3 message numbers of this run, and
 * destination UIDs for "extra".
 */
import { fetchBodies } from '../copy/fetch-stream.js';
import type { ImapSession } from '../copy/imap-session.js';
import { listMeta, openMailbox, type FetchedMessage } from '../copy/mailbox.js';
import { disposeBody } from '../copy/spill.js';
import {
  FAILING_CAUSES,
  parseInternalDate,
  type DiffCause,
  type VerifyResult,
} from '../copy/verify.js';

/** What a destination message must look like: the source bytes as RETR gave them. */
export interface InboxExpectation {
  /** POP3 message number (for examples) */
  n: number;
  sha256: string;
  size: number;
  /** the INTERNALDATE it must carry; undefined when unknown (matched with no date header) */
  date?: Date;
}

export interface InboxVerifyInput {
  mailbox: string;
  /** the source inbox of this run: UIDL -> message number (UIDLs unique) */
  source: ReadonlyMap<string, number>;
  /** UIDL -> destination UID, as the state records it (0: appended without UIDPLUS) */
  recorded: Readonly<Record<string, number>>;
  /** UIDLs this run could not copy */
  failed: ReadonlySet<string>;
  /** destination UID -> what it must hold (messages whose source bytes this run read) */
  expected: ReadonlyMap<number, InboxExpectation>;
  maxQueueBytes: number;
}

export async function verifyInbox(
  dst: ImapSession,
  input: InboxVerifyInput,
): Promise<VerifyResult> {
  const result: VerifyResult = {
    folder: input.mailbox,
    ok: true,
    checked: 0,
    hashed: 0,
    differences: {},
    examples: {},
  };
  const note = (cause: DiffCause, id: number): void => {
    result.differences[cause] = (result.differences[cause] ?? 0) + 1;
    const ex = (result.examples[cause] ??= []);
    if (ex.length < 10) ex.push(id);
  };

  const box = await openMailbox(dst, input.mailbox, { readOnly: true });
  const onDest = new Map<number, FetchedMessage>();
  if (box.exists > 0) {
    const list = await listMeta(dst, '1:*', 'UID INTERNALDATE RFC822.SIZE');
    for (const m of list.messages) onDest.set(m.uid, m);
  }

  for (const [uidl, n] of input.source) {
    result.checked++;
    if (input.failed.has(uidl)) {
      note('failed', n);
      continue;
    }
    const uid = input.recorded[uidl];
    // 0: the destination gave no APPENDUID (RFC 4315), so presence cannot be checked by UID
    if (uid === undefined || (uid !== 0 && !onDest.has(uid))) note('missing', n);
  }
  const accounted = new Set(Object.values(input.recorded));
  for (const uid of onDest.keys()) if (!accounted.has(uid)) note('extra', uid);

  for (const [uid, want] of input.expected) {
    const dm = onDest.get(uid);
    if (!dm) continue; // already counted as missing
    if (dm.size !== undefined && dm.size !== want.size) note('size', want.n);
    // INTERNALDATE has whole seconds (RFC 3501 9, date-time); compare instants
    if (
      want.date &&
      parseInternalDate(dm.internalDate ?? '') !== Math.floor(want.date.getTime() / 1000) * 1000
    )
      note('date', want.n);
  }
  const toHash = [...input.expected.keys()].filter((uid) => onDest.has(uid));
  for await (const m of fetchBodies(dst, toHash, { maxQueueBytes: input.maxQueueBytes })) {
    result.hashed++;
    disposeBody(m.body);
    const want = input.expected.get(m.uid);
    if (want && want.sha256 !== m.sha256) note('content', want.n);
  }
  result.ok = FAILING_CAUSES.every((c) => !result.differences[c]);
  return result;
}
