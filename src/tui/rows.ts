/**
 * The rows of each view, after the filter, and what a row means for the keys: its key
 * (selection survives new rows arriving) and its account (what `r` acts on).
 */
import type {
  LiveSession,
  LiveTransfer,
  MonitorSnapshot,
  RecentError,
} from '../core/control/protocol.js';

export type ViewName = 'sessions' | 'transfers' | 'errors';
export const VIEWS: readonly ViewName[] = ['sessions', 'transfers', 'errors'];

/**
 * More than one gateway node is known (PostgreSQL state): rows name their node. Reads the
 * snapshot defensively, since a gateway of an older version sends no node list.
 */
export function multiNode(s: MonitorSnapshot | undefined): boolean {
  return (s?.nodes?.length ?? 0) > 1;
}

function matches(filter: string, ...fields: (string | undefined)[]): boolean {
  if (filter === '') return true;
  const f = filter.toLowerCase();
  return fields.some((v) => v !== undefined && v.toLowerCase().includes(f));
}

/** what each view lists after the filter */
export interface ViewRows {
  sessions: LiveSession[];
  transfers: LiveTransfer[];
  errors: RecentError[];
}

export function filterRows(s: MonitorSnapshot | undefined, filter: string): ViewRows {
  return {
    sessions: (s?.sessions.list ?? []).filter((r) => matches(filter, r.user, r.client, r.node)),
    transfers: (s?.transfers ?? []).filter((r) => matches(filter, r.address, r.node)),
    errors: (s?.errors ?? []).filter((r) => matches(filter, r.subject)),
  };
}

export function errorKey(e: RecentError): string {
  return `${e.at} ${e.kind} ${e.subject} ${e.message}`;
}

/** key and account of every row of `view` (what the keys need, not what is drawn) */
export function viewEntries(
  view: ViewName,
  rows: ViewRows,
): { key: string; account: string | undefined }[] {
  switch (view) {
    case 'sessions':
      return rows.sessions.map((r) => ({ key: r.id, account: r.user }));
    case 'transfers':
      return rows.transfers.map((r) => ({ key: r.address, account: r.address }));
    case 'errors':
      // session and smtp errors may name a client address rather than an account
      return rows.errors.map((r) => ({
        key: errorKey(r),
        account: r.kind === 'login' || r.kind === 'transfer' ? r.subject : undefined,
      }));
  }
}
