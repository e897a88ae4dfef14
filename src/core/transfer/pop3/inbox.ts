/**
 * Reading a POP3 source inbox for the copy engine: the listing a run and a dry run plan
 * from (LIST sizes and UIDLs, RFC 1939 5 and 7), and the source bytes a full verify
 * compares the destination against.
 */
import { createHash } from 'node:crypto';
import { OperatorError } from '../../errors.js';
import { Pop3Error, type Pop3Client } from './pop3-client.js';
import { internalDateOf } from './received-date.js';
import type { InboxExpectation } from './verify-inbox.js';

export interface InboxListing {
  /** UIDL -> number of the first message with it, in message-number order */
  unique: Map<string, number>;
  /** message number -> size in octets (LIST) */
  sizes: Map<number, number>;
  /** later messages whose UIDL an earlier one already has (a broken server) */
  duplicates: Array<{ n: number; uidl: string }>;
}

/** LIST and UIDL. Without UIDL a copy can neither resume nor avoid duplicates: refused. */
export async function listInbox(pop: Pop3Client): Promise<InboxListing> {
  const sizes = await pop.list();
  let uidls: Map<number, string>;
  try {
    uidls = await pop.uidl();
  } catch (err) {
    if (!(err instanceof Pop3Error) || err.response === undefined) throw err;
    throw new OperatorError(
      `the source POP3 server does not support UIDL (${err.response}); without it a copy can neither resume nor avoid duplicates`,
      'enable UIDL on the source (RFC 1939 7), or copy over IMAP (source.imap)',
      'EUIDL',
      { cause: err },
    );
  }
  const listing: InboxListing = { unique: new Map(), sizes, duplicates: [] };
  for (const [n, uidl] of [...uidls].sort((a, b) => a[0] - b[0])) {
    if (listing.unique.has(uidl)) listing.duplicates.push({ n, uidl });
    else listing.unique.set(uidl, n);
  }
  return listing;
}

/**
 * What each recorded destination UID must hold, read again from the source (RETR), for
 * the messages `known` does not cover yet. One message in memory at a time.
 */
export async function readExpectations(
  pop: Pop3Client,
  recorded: Readonly<Record<string, number>>,
  known: Map<number, InboxExpectation>,
  now: () => Date,
): Promise<void> {
  for (const [n, uidl] of await pop.uidl()) {
    const uid = recorded[uidl];
    if (!uid || known.has(uid)) continue;
    const bytes = await pop.retr(n);
    const { date, from } = internalDateOf(bytes, now());
    known.set(uid, {
      n,
      sha256: createHash('sha256').update(bytes).digest('hex'),
      size: bytes.length,
      date: from === 'now' ? undefined : date,
    });
  }
}
