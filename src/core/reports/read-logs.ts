/**
 * What both reports read: the account records, the SMTP relay log and the copy ledger,
 * cut to a `--since` window. Reading is here; the reports themselves are pure functions
 * over the result (and `now`), so tests hand them fabricated inputs.
 */
import { dirname, join } from 'node:path';
import { OperatorError } from '../errors.js';
import { RELAY_LOG_FILE, type RelayLogEntry } from '../frontends/smtp/relay-log.js';
import { readEventLog } from '../state/event-log.js';
import type { AccountRecord, StateStore } from '../state/types.js';
import type { LedgerEntry } from '../transfer/types.js';

export const LEDGER_FILE = 'ledger.jsonl';

export interface ReportInputs {
  records: AccountRecord[];
  relay: RelayLogEntry[];
  ledger: LedgerEntry[];
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

export function windowRelay(entries: Iterable<RelayLogEntry>, since?: Date): RelayLogEntry[] {
  const out: RelayLogEntry[] = [];
  for (const e of entries) if (isRelayEntry(e) && inWindow(e.time, since)) out.push(e);
  return out;
}

export function windowLedger(entries: Iterable<LedgerEntry>, since?: Date): LedgerEntry[] {
  const out: LedgerEntry[] = [];
  for (const e of entries) if (isLedgerEntry(e) && inWindow(e.ts, since)) out.push(e);
  return out;
}

/** Logs are files other programs may have touched: keep only lines of the right shape. */
function isRelayEntry(e: unknown): e is RelayLogEntry {
  const r = e as Partial<RelayLogEntry> | null;
  return (
    typeof r === 'object' &&
    r !== null &&
    typeof r.time === 'string' &&
    Array.isArray(r.recipients) &&
    (r.route === 'source' || r.route === 'destination')
  );
}

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
  /** the state file: the ledger lives beside it */
  statePath: string;
  logDir: string;
  domains: string[];
  now: Date;
  since?: Date;
}

/** Read everything, rotated log files included (the window may reach back into them). */
export async function readReportInputs(o: ReadInputsOptions): Promise<ReportInputs> {
  const relay: RelayLogEntry[] = [];
  for await (const e of readEventLog<RelayLogEntry>(join(o.logDir, RELAY_LOG_FILE), {
    includeRotated: true,
  }))
    relay.push(e);
  const ledger: LedgerEntry[] = [];
  for await (const e of readEventLog<LedgerEntry>(join(dirname(o.statePath), LEDGER_FILE), {
    includeRotated: true,
  }))
    ledger.push(e);
  return {
    records: o.store.list(),
    relay: windowRelay(relay, o.since),
    ledger: windowLedger(ledger, o.since),
    domains: o.domains,
    now: o.now,
    ...(o.since ? { since: o.since } : {}),
  };
}
