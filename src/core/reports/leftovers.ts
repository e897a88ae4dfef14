/**
 * `report leftovers`: what still depends on the source, so it can be switched off safely.
 *
 * Two kinds of rows. Accounts that are not migrated (waiting, failed, excluded, never
 * logged in although imported from the list of all source accounts). And addresses that
 * get mail through the source but never logged in: aliases, lists, forwards and
 * auto-responders, rules the source applies that nobody will carry over unless the
 * administrator recreates them by hand. The relay log says how much mail each got in
 * the window and whether it looked automatic.
 *
 * Pure: (records, relay log entries, domains, now) in, rows out; the log is read once, as a
 * stream.
 */
import type { AutoHint, RelayLogEntry } from '../smtp/relay-log.js';
import { accountKeys } from '../smtp/recipients.js';
import type { AccountRecord, AccountState } from '../state/types.js';
import type { Cell, ReportTable, ReportView } from './view.js';
import type { LogEntries, ReportInputs } from './read-logs.js';

export type LeftoverStatus =
  | 'failed'
  | 'captured'
  | 'transferring'
  | 'never-logged-in'
  | 'not-captured'
  | 'excluded'
  | 'mail-only';

/** Order of the rows: what needs the administrator first. */
export const LEFTOVER_ORDER: readonly LeftoverStatus[] = [
  'failed',
  'captured',
  'transferring',
  'never-logged-in',
  'not-captured',
  'excluded',
  'mail-only',
];

export interface LeftoverRow {
  address: string;
  status: LeftoverStatus;
  /** the record's state; undefined for an address without a record */
  state?: AccountState;
  /** why failed or excluded */
  cause?: string;
  lastLogin?: string;
  /** accepted messages relayed to the source for this address in the window */
  messages: number;
  /** first and last of those messages */
  firstSeen?: string;
  lastSeen?: string;
  /** distinct senders of those messages */
  senders: number;
  /** automatic-mail hints seen, with how many messages carried each */
  auto: Partial<Record<AutoHint, number>>;
  /** List-Id values seen (RFC 2919), at most five */
  listIds: string[];
  action: string;
}

export interface LeftoversReport {
  generatedAt: string;
  since?: string;
  /** rows per status */
  counts: Record<LeftoverStatus, number>;
  rows: LeftoverRow[];
}

interface MailStats {
  messages: number;
  firstSeen?: string;
  lastSeen?: string;
  senders: Set<string>;
  auto: Partial<Record<AutoHint, number>>;
  listIds: Set<string>;
}

const MAX_LIST_IDS = 5;

function emptyStats(): MailStats {
  return { messages: 0, senders: new Set(), auto: {}, listIds: new Set() };
}

/**
 * Mail the source accepted, per store key. A recipient is counted under the key of its
 * record when there is one (a bare login name for the first domain, see accountKeys),
 * else under its lower-cased address.
 */
export async function mailToSource(
  relay: LogEntries<RelayLogEntry>,
  records: ReadonlyMap<string, AccountRecord>,
  domains: readonly string[],
): Promise<Map<string, MailStats>> {
  const out = new Map<string, MailStats>();
  for await (const e of relay) {
    if (e.route !== 'source' || !e.accepted) continue;
    const seen = new Set<string>();
    for (const r of e.recipients) {
      const keys = accountKeys(r.address, domains);
      const key = keys.find((k) => records.has(k)) ?? keys[0]!;
      if (seen.has(key)) continue; // one message, however many RCPTs name the same account
      seen.add(key);
      let s = out.get(key);
      if (!s) out.set(key, (s = emptyStats()));
      s.messages++;
      if (s.firstSeen === undefined || e.time < s.firstSeen) s.firstSeen = e.time;
      if (s.lastSeen === undefined || e.time > s.lastSeen) s.lastSeen = e.time;
      s.senders.add(e.from.toLowerCase());
      for (const h of new Set(e.auto ?? [])) s.auto[h] = (s.auto[h] ?? 0) + 1;
      if (e.listId && s.listIds.size < MAX_LIST_IDS) s.listIds.add(e.listId);
    }
  }
  return out;
}

/** A record that only exists because mail or an import named it: nobody logged in. */
function neverLoggedIn(r: AccountRecord): boolean {
  return r.lastLogin === undefined && r.credentials === undefined;
}

function statusOf(r: AccountRecord, mail: MailStats | undefined): LeftoverStatus | undefined {
  switch (r.state) {
    case 'migrated':
      return undefined;
    case 'failed':
    case 'captured':
    case 'transferring':
    case 'excluded':
      return r.state;
    case 'unknown':
      if (!neverLoggedIn(r)) return 'not-captured';
      if (r.imported) return 'never-logged-in';
      return mail ? 'mail-only' : undefined;
  }
}

function causeOf(r: AccountRecord): string | undefined {
  const last = r.errors[r.errors.length - 1];
  return r.reason ?? last?.detail ?? last?.cause;
}

/** Automatic mail only: a subscription or a notification address rather than a person. */
function onlyAutomatic(s: MailStats): boolean {
  const max = Math.max(0, ...Object.values(s.auto));
  return s.messages > 0 && max === s.messages;
}

export function suggestAction(status: LeftoverStatus, address: string, mail?: MailStats): string {
  switch (status) {
    case 'failed':
      return `fix the cause, then: autoport accounts retry ${address}`;
    case 'captured':
      return `waits for the worker pool; to move it now: autoport migrate ${address}`;
    case 'transferring':
      return 'being moved now; check again when it is done';
    case 'never-logged-in':
      return mail && mail.messages > 0
        ? `gets mail but never logged in: ask the user to log in once, or migrate with the password: autoport migrate ${address} --password-stdin`
        : `no login and no mail: ask whether it is still used; if not, autoport accounts exclude ${address} --reason unused`;
    case 'not-captured':
      return 'credentials were forgotten: the next login through the gateway captures them again';
    case 'excluded':
      return 'excluded on purpose: move it by hand (or autoport accounts include it) before the source goes';
    case 'mail-only':
      if (mail && mail.listIds.size > 0 && onlyAutomatic(mail))
        return 'only list mail: re-subscribe the destination address, or recreate the alias on the destination';
      if (mail && onlyAutomatic(mail))
        return 'only automatic mail: point the sending system at the destination, or recreate the alias there';
      return 'alias, list or forward on the source: recreate it on the destination before switching the source off';
  }
}

function row(
  address: string,
  status: LeftoverStatus,
  rec: AccountRecord | undefined,
  mail: MailStats | undefined,
): LeftoverRow {
  const out: LeftoverRow = {
    address,
    status,
    messages: mail?.messages ?? 0,
    senders: mail?.senders.size ?? 0,
    auto: { ...(mail?.auto ?? {}) },
    listIds: [...(mail?.listIds ?? [])].sort(),
    action: suggestAction(status, address, mail),
  };
  if (rec) out.state = rec.state;
  const cause = rec && (status === 'failed' || status === 'excluded') ? causeOf(rec) : undefined;
  if (cause !== undefined) out.cause = cause;
  if (rec?.lastLogin) out.lastLogin = rec.lastLogin;
  if (mail?.firstSeen) out.firstSeen = mail.firstSeen;
  if (mail?.lastSeen) out.lastSeen = mail.lastSeen;
  return out;
}

export async function leftoversReport(input: ReportInputs): Promise<LeftoversReport> {
  const records = new Map(input.records.map((r) => [r.address, r]));
  const mail = await mailToSource(input.relay, records, input.domains);
  const rows: LeftoverRow[] = [];
  for (const rec of records.values()) {
    const m = mail.get(rec.address);
    const status = statusOf(rec, m);
    if (status) rows.push(row(rec.address, status, rec, m));
  }
  for (const [key, m] of mail) {
    if (!records.has(key)) rows.push(row(key, 'mail-only', undefined, m));
  }
  const rank = (s: LeftoverStatus): number => LEFTOVER_ORDER.indexOf(s);
  rows.sort((a, b) => rank(a.status) - rank(b.status) || (a.address < b.address ? -1 : 1));
  const counts = Object.fromEntries(LEFTOVER_ORDER.map((s) => [s, 0])) as Record<
    LeftoverStatus,
    number
  >;
  for (const r of rows) counts[r.status]++;
  return {
    generatedAt: input.now.toISOString(),
    ...(input.since ? { since: input.since.toISOString() } : {}),
    counts,
    rows,
  };
}

function autoText(auto: LeftoverRow['auto']): string {
  return Object.entries(auto)
    .map(([h, n]) => `${h}:${n}`)
    .sort()
    .join(' ');
}

const day = (iso: string | undefined): string => (iso ? iso.slice(0, 10) : '');

const CSV_HEADER = [
  'address',
  'status',
  'state',
  'cause',
  'last_login',
  'messages',
  'first_seen',
  'last_seen',
  'senders',
  'auto',
  'list_ids',
  'action',
];

function csvRow(r: LeftoverRow): Cell[] {
  return [
    r.address,
    r.status,
    r.state,
    r.cause,
    r.lastLogin,
    r.messages,
    r.firstSeen,
    r.lastSeen,
    r.senders,
    autoText(r.auto),
    r.listIds.join(' '),
    r.action,
  ];
}

export const leftoversView: ReportView<LeftoversReport> = {
  tables(r): ReportTable[] {
    return [
      {
        title: `Still on the source${r.since ? ` (mail since ${r.since})` : ''}`,
        header: ['ADDRESS', 'STATUS', 'CAUSE', 'MAIL', 'FIRST', 'LAST', 'AUTO', 'ACTION'],
        rows: r.rows.map((x) => [
          x.address,
          x.status,
          x.cause ?? '',
          x.messages,
          day(x.firstSeen),
          day(x.lastSeen),
          autoText(x.auto),
          x.action,
        ]),
      },
    ];
  },
  csv: (r) => ({ header: CSV_HEADER, rows: r.rows.map(csvRow) }),
  footer(r) {
    const parts = LEFTOVER_ORDER.filter((s) => r.counts[s] > 0).map((s) => `${s} ${r.counts[s]}`);
    return [
      r.rows.length === 0
        ? 'Nothing depends on the source any more.'
        : `${r.rows.length} leftover(s): ${parts.join(', ')}`,
    ];
  },
};
