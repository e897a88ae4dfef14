/**
 * Mailbox-level commands on an ImapSession: SELECT/EXAMINE with what they report, FETCH
 * response parsing, metadata listings and UID SEARCH. Names are given decoded (as the
 * folder planner and imapflow spell them) and sent in modified UTF-7 (RFC 3501 5.1.3).
 */
import { encodeMUtf7 } from '../folders/mutf7.js';
import { taggedError } from './errors.js';
import type { ImapSession } from './imap-session.js';
import type { CommandPart } from './session-types.js';
import { SpilledLiteral, type Body } from './spill.js';
import {
  asList,
  asString,
  expandSet,
  parseValues,
  quoted,
  type ImapValue,
  type RawResponse,
} from './wire.js';

export interface FetchedMessage {
  seq: number;
  uid: number;
  flags?: string[];
  /** INTERNALDATE exactly as the server wrote it */
  internalDate?: string;
  /** RFC822.SIZE as reported (informational: the literal received is what counts) */
  size?: number;
  modseq?: string;
  body?: Body;
}

export interface MailboxInfo {
  name: string;
  uidValidity: number;
  uidNext: number;
  exists: number;
  /** null when the server did not send PERMANENTFLAGS (all flags are permanent, RFC 3501 7.1) */
  permanentFlags: string[] | null;
  highestModseq?: string;
  /** the server said NOMODSEQ (RFC 7162 3.1.2.2) */
  noModseq: boolean;
  readOnly: boolean;
  /** QRESYNC: UIDs expunged since the given modseq */
  vanished: number[];
  /** QRESYNC: messages whose flags changed since the given modseq */
  changed: FetchedMessage[];
}

/** A mailbox name as a command argument. */
export function mailboxArg(name: string): CommandPart[] {
  const wire = /[^\x20-\x7e]|&/.test(name) ? encodeMUtf7(name) : name;
  const q = quoted(wire);
  return q === null ? [{ literal: Buffer.from(wire, 'utf8') }] : [q];
}

const FETCH_HEAD = /^\* (\d+) FETCH /i;

/** Parse `* n FETCH (...)`; null for anything else. */
export function parseFetch(r: RawResponse): FetchedMessage | null {
  const first = r.pieces[0] ?? '';
  const m = FETCH_HEAD.exec(first);
  if (!m) return null;
  const values = parseValues(r, m[0].length);
  const items = asList(values[0]);
  const msg: FetchedMessage = { seq: Number(m[1]), uid: 0 };
  for (let i = 0; i + 1 < items.length; i += 2) {
    const key = asString(items[i]).toUpperCase();
    const v = items[i + 1];
    switch (key) {
      case 'UID':
        msg.uid = Number(asString(v));
        break;
      case 'FLAGS':
        msg.flags = asList(v).map((f) => asString(f));
        break;
      case 'INTERNALDATE':
        msg.internalDate = asString(v);
        break;
      case 'RFC822.SIZE':
        msg.size = Number(asString(v));
        break;
      case 'MODSEQ':
        msg.modseq = asString(asList(v)[0]);
        break;
      case 'BODY[]':
        msg.body = bodyBuffer(v);
        break;
    }
  }
  return msg;
}

function bodyBuffer(v: ImapValue | undefined): Body {
  if (Buffer.isBuffer(v) || v instanceof SpilledLiteral) return v;
  // a quoted string or NIL body: rare, but legal (RFC 3501 7.4.2)
  return Buffer.from(typeof v === 'string' ? v : '', 'latin1');
}

export interface OpenOptions {
  readOnly: boolean;
  condstore?: boolean;
  /** QRESYNC (RFC 7162 3.2.5): the session must have sent ENABLE QRESYNC */
  qresync?: { uidValidity: number; modseq: string };
}

/** SELECT (or EXAMINE, read-only: nothing changes on the source, not even \Recent). */
export async function openMailbox(
  s: ImapSession,
  name: string,
  opts: OpenOptions,
): Promise<MailboxInfo> {
  const info: MailboxInfo = {
    name,
    uidValidity: 0,
    uidNext: 0,
    exists: 0,
    permanentFlags: null,
    noModseq: false,
    readOnly: opts.readOnly,
    vanished: [],
    changed: [],
  };
  let params = '';
  if (opts.qresync) params = ` (QRESYNC (${opts.qresync.uidValidity} ${opts.qresync.modseq}))`;
  else if (opts.condstore) params = ' (CONDSTORE)';
  const onUntagged = (r: RawResponse): void => {
    const line = r.pieces[0] ?? '';
    let m: RegExpExecArray | null;
    if ((m = /^\* (\d+) EXISTS/i.exec(line))) info.exists = Number(m[1]);
    else if ((m = /^\* OK \[UIDVALIDITY (\d+)\]/i.exec(line))) info.uidValidity = Number(m[1]);
    else if ((m = /^\* OK \[UIDNEXT (\d+)\]/i.exec(line))) info.uidNext = Number(m[1]);
    else if ((m = /^\* OK \[HIGHESTMODSEQ (\d+)\]/i.exec(line))) info.highestModseq = m[1];
    else if (/^\* OK \[NOMODSEQ\]/i.test(line)) info.noModseq = true;
    else if ((m = /^\* OK \[PERMANENTFLAGS \(([^)]*)\)\]/i.exec(line)))
      info.permanentFlags = (m[1] ?? '').split(/\s+/).filter(Boolean);
    else if ((m = /^\* VANISHED \(EARLIER\) (\S+)/i.exec(line)))
      info.vanished.push(...expandSet(m[1] ?? ''));
    else {
      const f = parseFetch(r);
      if (f) info.changed.push(f);
    }
  };
  const command = [opts.readOnly ? 'EXAMINE ' : 'SELECT ', ...mailboxArg(name), params];
  let t = await s.command(command, onUntagged);
  // Dovecot creates an "auto" mailbox on first SELECT; two sessions doing that at once make
  // one of them fail with ALREADYEXISTS although the mailbox is there: just select again
  if (t.status === 'NO' && t.code?.name === 'ALREADYEXISTS')
    t = await s.command(command, onUntagged);
  if (t.status !== 'OK') throw taggedError(s.label, t);
  if (t.code?.name === 'READ-ONLY') info.readOnly = true;
  return info;
}

export interface MetaListing {
  messages: FetchedMessage[];
  vanished: number[];
}

/**
 * UID FETCH of metadata only (no bodies). `changedSince` adds CHANGEDSINCE (RFC 7162 3.1.4),
 * `vanished` the VANISHED modifier (QRESYNC only).
 */
export async function listMeta(
  s: ImapSession,
  uidSet: string,
  items: string,
  opts: { changedSince?: string; vanished?: boolean } = {},
): Promise<MetaListing> {
  const out: MetaListing = { messages: [], vanished: [] };
  let mods = '';
  if (opts.changedSince)
    mods = ` (CHANGEDSINCE ${opts.changedSince}${opts.vanished ? ' VANISHED' : ''})`;
  await s.ok(`UID FETCH ${uidSet} (${items})${mods}`, (r) => {
    const f = parseFetch(r);
    if (f && f.uid) {
      out.messages.push(f);
      return;
    }
    const m = /^\* VANISHED (?:\(EARLIER\) )?(\S+)/i.exec(r.pieces[0] ?? '');
    if (m) out.vanished.push(...expandSet(m[1] ?? ''));
  });
  return out;
}

/** UID SEARCH; returns the UIDs (ESEARCH not needed: Dovecot answers plain SEARCH). */
export async function searchUids(s: ImapSession, criteria: string): Promise<number[]> {
  const out: number[] = [];
  await s.ok(`UID SEARCH ${criteria}`, (r) => {
    const line = r.pieces[0] ?? '';
    if (/^\* SEARCH\b/i.test(line)) {
      for (const n of line.slice(8).trim().split(/\s+/))
        if (n && /^\d+$/.test(n)) out.push(Number(n));
    }
  });
  return out;
}
