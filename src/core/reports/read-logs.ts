/**
 * What both reports read: the account records, the SMTP relay log and the copy ledger,
 * cut to a `--since` window. Reading is here; the reports themselves are pure functions
 * over the result (and `now`), so tests hand them fabricated inputs.
 */
import { join } from 'node:path';
import { OperatorError } from '../errors.js';
import { readRelayLog, type RelayLogEntry } from '../smtp/relay-log.js';
import { readEventLog } from '../state/event-log.js';
import type { AccountRecord, StateStore } from '../state/types.js';
import type { LedgerEntry } from '../transfer/types.js';

export const LEDGER_FILE = 'ledger.jsonl';

/**
 * A log the reports read once, front to back. From files it is streamed (a ledger has a
 * line per message moved: millions on a large migration, so it is never held in memory);
 * tests pass arrays.
 */
export type LogEntries<T> = Iterable<T> | AsyncIterable<T>;

export interface ReportInputs {
  records: AccountRecord[];
  relay: LogEntries<RelayLogEntry>;
  ledger: LogEntries<LedgerEntry>;
  /** the configured mail domains; the first one is where bare login names live */
  domains: string[];
  now: Date;
  /** start of the window; log entries before it were left out */
  since?: Date;
}

const UNITS: Record<string, number> = {
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
};

/**
 * `--since`: an ISO date or date-time (2026-11-01, 2026-11-01T08:00Z), or a span back from
 * now: 30m, 12h, 7d, 2w.
 */
export function parseSince(text: string, now: Date): Date {
  const t = text.trim();
  const rel = /^(\d{1,6})\s*([mhdw])$/i.exec(t);
  if (rel) return new Date(now.getTime() - Number(rel[1]) * UNITS[rel[2]!.toLowerCase()]!);
  if (/^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(t)) {
    // a bare date is midnight UTC (Date.parse does the same for the date-only form)
    const ms = Date.parse(t.replace(' ', 'T'));
    if (Number.isFinite(ms)) return new Date(ms);
  }
  throw new OperatorError(
    `--since ${JSON.stringify(text)} is neither an ISO date nor a span like 7d`,
    'use a date such as 2026-11-01 (UTC), a time such as 2026-11-01T08:00Z, or a span: 30m, 12h, 7d, 2w',
    'EUSAGE',
  );
}

function inWindow(time: string | undefined, since: Date | undefined): boolean {
  if (since === undefined) return true;
  const ms = time === undefined ? NaN : Date.parse(time);
  return Number.isFinite(ms) && ms >= since.getTime();
}

export async function* windowRelay(
  entries: LogEntries<RelayLogEntry>,
  since?: Date,
): AsyncGenerator<RelayLogEntry> {
  for await (const e of entries) if (inWindow(e.time, since)) yield e;
}

export async function* windowLedger(
  entries: LogEntries<unknown>,
  since?: Date,
): AsyncGenerator<LedgerEntry> {
  for await (const e of entries) if (isLedgerEntry(e) && inWindow(e.ts, since)) yield e;
}

/** Logs are files other programs may have touched: keep only lines of the right shape. */
function isLedgerEntry(e: unknown): e is LedgerEntry {
  const l = e as Partial<LedgerEntry> | null;
  return (
    typeof l === 'object' &&
    l !== null &&
    typeof l.account === 'string' &&
    typeof l.outcome === 'string'
  );
}

export interface ReadInputsOptions {
  store: StateStore;
  /** the state folder: the ledger lives there */
  stateDir: string;
  logDir: string;
  domains: string[];
  now: Date;
  since?: Date;
}

/**
 * The records now, and the logs as streams over every file, rotated ones included (the
 * window may reach back into them); each stream reads its files when iterated.
 */
export async function readReportInputs(o: ReadInputsOptions): Promise<ReportInputs> {
  const ledgerFile = join(o.stateDir, LEDGER_FILE);
  return {
    records: await o.store.list(),
    relay: {
      [Symbol.asyncIterator]: () => windowRelay(readRelayLog(o.logDir), o.since),
    },
    ledger: {
      [Symbol.asyncIterator]: () =>
        windowLedger(readEventLog(ledgerFile, { includeRotated: true }), o.since),
    },
    domains: o.domains,
    now: o.now,
    ...(o.since ? { since: o.since } : {}),
  };
}
