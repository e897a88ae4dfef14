/**
 * `report progress`: how far the migration is. Accounts by state (now), mail and bytes
 * moved and the transfer rate (from the copy ledger in the window), failures grouped by
 * cause, and per day how much SMTP still went to the source: the number that has to
 * reach zero before the source can go.
 *
 * Pure: (records, relay log, ledger, now) in, one result out; each log is read once, as a
 * stream.
 */
import { ACCOUNT_STATES, type AccountRecord, type AccountState } from '../state/types.js';
import type { LedgerEntry } from '../transfer/types.js';
import type { RelayLogEntry } from '../smtp/relay-log.js';
import type { Cell, ReportTable, ReportView } from './view.js';
import type { ReportInputs } from './read-logs.js';

export interface MovedSummary {
  /** messages written to the destination (ledger outcome copied) */
  copied: number;
  /** found already there by hash (matched): moved earlier, not written again */
  matched: number;
  skipped: number;
  failed: number;
  /** bytes of the copied messages */
  bytes: number;
  /** accounts with at least one ledger entry in the window */
  accounts: number;
  /** time some account was being copied (the union of each account's first..last entry) */
  busySeconds: number;
  /** bytes per busy second; null when there is too little to measure */
  bytesPerSecond: number | null;
  messagesPerMinute: number | null;
}

export interface FailureGroup {
  cause: string;
  accounts: number;
  /** the first few, sorted */
  examples: string[];
}

export interface MessageFailureGroup {
  reason: string;
  messages: number;
}

export interface SmtpDay {
  /** UTC date */
  day: string;
  source: number;
  destination: number;
  /** source / (source + destination), 0..1 */
  sourceShare: number;
}

/**
 * How long moves kept their account locked (the switch of each account's last move, from
 * the records): what a user could have noticed.
 */
export interface LockSummary {
  /** moves with a recorded switch in the window */
  moves: number;
  p50Ms: number | null;
  p95Ms: number | null;
  maxMs: number | null;
  /** share of those moves locked at most LOCK_TARGET_MS, 0..1; null without moves */
  withinTarget: number | null;
  /** messages the final passes copied, in all */
  finalPassCopied: number;
}

/** the lock a move should stay within (issue 12): a login retried a moment later succeeds */
export const LOCK_TARGET_MS = 2_000;

export interface ProgressReport {
  generatedAt: string;
  since?: string;
  accounts: { total: number; byState: Record<AccountState, number> };
  moved: MovedSummary;
  locks: LockSummary;
  failures: FailureGroup[];
  messageFailures: MessageFailureGroup[];
  smtpByDay: SmtpDay[];
}

const MAX_EXAMPLES = 3;

/**
 * Failure text names folders (quoted, as IMAP quotes them), counts and addresses; group on its shape so that "3
 * messages failed in INBOX" and "7 messages failed in Sent" land together.
 */
export function causeKey(text: string): string {
  return text
    .replace(/\S+@\S+/g, '<address>')
    .replace(/"[^"]*"/g, '"..."')
    .replace(/\d+/g, 'N')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 160);
}

function failureCause(r: AccountRecord): string {
  const last = r.errors[r.errors.length - 1];
  const text = r.reason ?? last?.detail ?? last?.cause;
  return text ? causeKey(text) : 'unknown';
}

export function groupFailures(records: readonly AccountRecord[]): FailureGroup[] {
  const groups = new Map<string, string[]>();
  for (const r of records) {
    if (r.state !== 'failed') continue;
    const c = failureCause(r);
    groups.set(c, [...(groups.get(c) ?? []), r.address]);
  }
  return [...groups]
    .map(([cause, list]) => ({
      cause,
      accounts: list.length,
      examples: list.sort().slice(0, MAX_EXAMPLES),
    }))
    .sort((a, b) => b.accounts - a.accounts || (a.cause < b.cause ? -1 : 1));
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: readonly number[], p: number): number | null {
  if (!sorted.length) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] as number;
}

export function lockSummary(records: readonly AccountRecord[], since?: Date): LockSummary {
  const ms: number[] = [];
  let finalPassCopied = 0;
  for (const r of records) {
    const lock = r.transfer?.lock;
    if (!lock || (since && Date.parse(lock.at) < since.getTime())) continue;
    ms.push(lock.ms);
    finalPassCopied += lock.copied;
  }
  ms.sort((a, b) => a - b);
  return {
    moves: ms.length,
    p50Ms: percentile(ms, 50),
    p95Ms: percentile(ms, 95),
    maxMs: ms.length ? (ms[ms.length - 1] as number) : null,
    withinTarget: ms.length ? ms.filter((m) => m <= LOCK_TARGET_MS).length / ms.length : null,
    finalPassCopied,
  };
}

/** Total length of the union of [start, end] intervals, in ms. */
function unionLength(intervals: Array<[number, number]>): number {
  const sorted = [...intervals].sort((a, b) => a[0] - b[0]);
  let total = 0;
  let cur: [number, number] | undefined;
  for (const [s, e] of sorted) {
    if (!cur || s > cur[1]) {
      if (cur) total += cur[1] - cur[0];
      cur = [s, e];
    } else cur[1] = Math.max(cur[1], e);
  }
  if (cur) total += cur[1] - cur[0];
  return total;
}

/**
 * The ledger's part of the report, one entry at a time: counters, each account's first and
 * last entry (for the busy time), failures by reason. Memory grows with accounts and
 * reasons, not with messages.
 */
export class LedgerTally {
  private readonly m = { copied: 0, matched: 0, skipped: 0, failed: 0, bytes: 0 };
  private readonly spans = new Map<string, [number, number]>();
  private readonly failures = new Map<string, number>();

  add(e: LedgerEntry): void {
    const m = this.m;
    if (e.outcome === 'copied') {
      m.copied++;
      m.bytes += e.size ?? 0;
    } else if (e.outcome === 'matched' || e.outcome === 'skipped' || e.outcome === 'failed')
      m[e.outcome]++;
    if (e.outcome === 'failed') {
      const k = causeKey(e.reason ?? 'unknown');
      this.failures.set(k, (this.failures.get(k) ?? 0) + 1);
    }
    const t = e.ts ? Date.parse(e.ts) : NaN;
    const span = this.spans.get(e.account);
    if (!Number.isFinite(t)) {
      if (!span) this.spans.set(e.account, [NaN, NaN]);
      return;
    }
    if (!span || !Number.isFinite(span[0])) this.spans.set(e.account, [t, t]);
    else this.spans.set(e.account, [Math.min(span[0], t), Math.max(span[1], t)]);
  }

  moved(): MovedSummary {
    const timed = [...this.spans.values()].filter(([s]) => Number.isFinite(s));
    const busySeconds = unionLength(timed) / 1000;
    return {
      ...this.m,
      accounts: this.spans.size,
      busySeconds,
      bytesPerSecond: busySeconds > 0 ? this.m.bytes / busySeconds : null,
      messagesPerMinute: busySeconds > 0 ? (this.m.copied * 60) / busySeconds : null,
    };
  }

  messageFailures(): MessageFailureGroup[] {
    return [...this.failures]
      .map(([reason, messages]) => ({ reason, messages }))
      .sort((a, b) => b.messages - a.messages || (a.reason < b.reason ? -1 : 1));
  }
}

/** Messages relayed per UTC day and backend, whatever the backend answered. */
export class SmtpDayTally {
  private readonly days = new Map<string, { source: number; destination: number }>();

  add(e: RelayLogEntry): void {
    const d = e.time.slice(0, 10);
    const c = this.days.get(d) ?? { source: 0, destination: 0 };
    c[e.route]++;
    this.days.set(d, c);
  }

  perDay(): SmtpDay[] {
    return [...this.days]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([day, c]) => ({
        day,
        ...c,
        sourceShare: c.source + c.destination > 0 ? c.source / (c.source + c.destination) : 0,
      }));
  }
}

export async function progressReport(input: ReportInputs): Promise<ProgressReport> {
  const byState = Object.fromEntries(ACCOUNT_STATES.map((s) => [s, 0])) as Record<
    AccountState,
    number
  >;
  for (const r of input.records) byState[r.state]++;
  const ledger = new LedgerTally();
  for await (const e of input.ledger) ledger.add(e);
  const smtp = new SmtpDayTally();
  for await (const e of input.relay) smtp.add(e);
  return {
    generatedAt: input.now.toISOString(),
    ...(input.since ? { since: input.since.toISOString() } : {}),
    accounts: { total: input.records.length, byState },
    moved: ledger.moved(),
    locks: lockSummary(input.records, input.since),
    failures: groupFailures(input.records),
    messageFailures: ledger.messageFailures(),
    smtpByDay: smtp.perDay(),
  };
}

export function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}

const percent = (share: number): string => `${(share * 100).toFixed(1)}%`;

const seconds = (ms: number | null): number | null => (ms === null ? null : ms / 1000);
const showMs = (ms: number | null): string => (ms === null ? 'n/a' : `${(ms / 1000).toFixed(2)} s`);

function lockRows(l: LockSummary): Cell[][] {
  return [
    ['moves', l.moves],
    ['p50', showMs(l.p50Ms)],
    ['p95', showMs(l.p95Ms)],
    ['max', showMs(l.maxMs)],
    [
      `within ${LOCK_TARGET_MS / 1000} s`,
      l.withinTarget === null ? 'n/a' : percent(l.withinTarget),
    ],
    ['messages copied by final passes', l.finalPassCopied],
  ];
}

export const progressView: ReportView<ProgressReport> = {
  tables(r): ReportTable[] {
    const m = r.moved;
    const rate =
      m.bytesPerSecond === null
        ? 'n/a'
        : `${humanBytes(Math.round(m.bytesPerSecond))}/s, ${(m.messagesPerMinute ?? 0).toFixed(1)} msg/min`;
    return [
      {
        title: `Accounts (${r.accounts.total})`,
        header: ['STATE', 'ACCOUNTS'],
        rows: ACCOUNT_STATES.map((s) => [s, r.accounts.byState[s]]),
      },
      {
        title: `Moved${r.since ? ` since ${r.since}` : ''}`,
        header: ['WHAT', 'VALUE'],
        rows: [
          ['messages copied', m.copied],
          ['already there (matched)', m.matched],
          ['skipped', m.skipped],
          ['failed', m.failed],
          ['bytes copied', `${humanBytes(m.bytes)} (${m.bytes})`],
          ['accounts touched', m.accounts],
          ['rate while copying', rate],
        ],
      },
      {
        title: `Switch locks${r.since ? ` since ${r.since}` : ''} (logins refused, mail deferred)`,
        header: ['WHAT', 'VALUE'],
        rows: lockRows(r.locks),
      },
      {
        title: 'Failed accounts by cause',
        header: ['ACCOUNTS', 'CAUSE', 'EXAMPLES'],
        rows: r.failures.map((f) => [f.accounts, f.cause, f.examples.join(' ')]),
      },
      {
        title: 'Failed messages by reason',
        header: ['MESSAGES', 'REASON'],
        rows: r.messageFailures.map((f) => [f.messages, f.reason]),
      },
      {
        title: 'SMTP per day',
        header: ['DAY', 'TO SOURCE', 'TO DESTINATION', 'SOURCE SHARE'],
        rows: r.smtpByDay.map((d) => [d.day, d.source, d.destination, percent(d.sourceShare)]),
      },
    ];
  },
  /** One flat table (tidy data): section, key, metric, value. */
  csv(r): ReportTable {
    const rows: Cell[][] = [];
    for (const s of ACCOUNT_STATES) rows.push(['accounts', s, 'accounts', r.accounts.byState[s]]);
    const m = r.moved;
    for (const k of ['copied', 'matched', 'skipped', 'failed', 'bytes', 'accounts'] as const)
      rows.push(['moved', '', k, m[k]]);
    rows.push(['moved', '', 'busy_seconds', m.busySeconds]);
    rows.push(['moved', '', 'bytes_per_second', m.bytesPerSecond]);
    rows.push(['moved', '', 'messages_per_minute', m.messagesPerMinute]);
    const l = r.locks;
    rows.push(['locks', '', 'moves', l.moves]);
    rows.push(['locks', '', 'p50_seconds', seconds(l.p50Ms)]);
    rows.push(['locks', '', 'p95_seconds', seconds(l.p95Ms)]);
    rows.push(['locks', '', 'max_seconds', seconds(l.maxMs)]);
    rows.push(['locks', '', 'within_2s_share', l.withinTarget]);
    rows.push(['locks', '', 'final_pass_messages', l.finalPassCopied]);
    for (const f of r.failures) rows.push(['failures', f.cause, 'accounts', f.accounts]);
    for (const f of r.messageFailures)
      rows.push(['message_failures', f.reason, 'messages', f.messages]);
    for (const d of r.smtpByDay) {
      rows.push(['smtp', d.day, 'source', d.source]);
      rows.push(['smtp', d.day, 'destination', d.destination]);
      rows.push(['smtp', d.day, 'source_share', d.sourceShare]);
    }
    return { header: ['section', 'key', 'metric', 'value'], rows };
  },
};
