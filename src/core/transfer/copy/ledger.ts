/**
 * The copy ledger: one line per message and outcome, append-only beside the state (through
 * the state layer's event log, fsynced per batch). Every message a run touches ends as
 * copied, matched (found already on the destination by hash), skipped (with the reason) or
 * failed (with the server's text); flag changes and expunges are recorded too. Counts are
 * kept per account so the record's summary needs no second pass over the file.
 */
import { openEventLog } from '../../state/event-log.js';
import type { EventLog } from '../../state/types.js';
import type { LedgerEntry, LedgerOutcome } from '../types.js';

export type LedgerCounts = Record<LedgerOutcome, number>;

export function emptyCounts(): LedgerCounts {
  return { copied: 0, skipped: 0, failed: 0, matched: 0, expunged: 0, flags: 0, deleted: 0 };
}

export interface AccountLedger {
  readonly account: string;
  readonly counts: LedgerCounts;
  record(entry: Omit<LedgerEntry, 'ts' | 'account'>): void;
}

export interface Ledger {
  readonly path: string;
  forAccount(account: string): AccountLedger;
  flush(): Promise<void>;
  close(): Promise<void>;
}

export function ledgerOver(log: EventLog<LedgerEntry>, now: () => Date = () => new Date()): Ledger {
  return {
    path: log.path,
    forAccount(account: string): AccountLedger {
      const counts = emptyCounts();
      return {
        account,
        counts,
        record(entry) {
          counts[entry.outcome]++;
          log.append({ ts: now().toISOString(), account, ...entry });
        },
      };
    },
    flush: () => log.flush(),
    close: () => log.close(),
  };
}

export async function openLedger(path: string): Promise<Ledger> {
  const log = await openEventLog<LedgerEntry>(path, {
    fsync: true,
    maxBytes: 64 * 1024 * 1024,
    keep: 20,
  });
  return ledgerOver(log);
}

/** A ledger that keeps counts only (dry runs, tests that do not read the file). */
export function countingLedger(): Ledger {
  return {
    path: '',
    forAccount(account) {
      const counts = emptyCounts();
      return { account, counts, record: (e) => void counts[e.outcome]++ };
    },
    flush: async () => undefined,
    close: async () => undefined,
  };
}
