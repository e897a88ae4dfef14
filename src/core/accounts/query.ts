/**
 * `accounts list` and `accounts show`: what the store knows about accounts, never the
 * sealed credentials themselves (only whether there are some).
 */
import { OperatorError } from '../errors.js';
import type {
  AccountError,
  AccountRecord,
  AccountState,
  FolderProgress,
  StateStore,
  TransferSummary,
} from '../state/types.js';

export interface AccountSummary {
  address: string;
  state: AccountState;
  hasCredentials: boolean;
  imported: boolean;
  firstSeen?: string;
  lastSeen?: string;
  lastLogin?: string;
  updatedAt: string;
  reason?: string;
  attempts?: number;
  nextAttemptAt?: string;
  lastError?: AccountError;
  transfer?: TransferSummary;
}

export interface AccountDetail extends AccountSummary {
  errors: AccountError[];
  folders: FolderProgress[];
  /** POP3 UIDLs kept for the account (count only) */
  pop3Uidls?: number;
}

export interface ListFilter {
  state?: AccountState[];
  /** only accounts imported from the list of source accounts (true) or only others (false) */
  imported?: boolean;
  /** substring of the address, any case */
  match?: string;
}

export function summarize(r: AccountRecord): AccountSummary {
  const s: AccountSummary = {
    address: r.address,
    state: r.state,
    hasCredentials: r.credentials !== undefined,
    imported: r.imported === true,
    updatedAt: r.updatedAt,
  };
  if (r.firstSeen) s.firstSeen = r.firstSeen;
  if (r.lastSeen) s.lastSeen = r.lastSeen;
  if (r.lastLogin) s.lastLogin = r.lastLogin;
  if (r.reason !== undefined) s.reason = r.reason;
  if (r.attempts !== undefined) s.attempts = r.attempts;
  if (r.nextAttemptAt) s.nextAttemptAt = r.nextAttemptAt;
  const last = r.errors[r.errors.length - 1];
  if (last) s.lastError = { ...last };
  if (r.transfer) s.transfer = structuredClone(r.transfer);
  return s;
}

export async function listAccounts(
  store: StateStore,
  filter: ListFilter = {},
): Promise<AccountSummary[]> {
  const states = filter.state && filter.state.length > 0 ? filter.state : undefined;
  const match = filter.match?.toLowerCase();
  return (await store.list(states ? { state: states } : {}))
    .filter((r) => filter.imported === undefined || (r.imported === true) === filter.imported)
    .filter((r) => match === undefined || r.address.includes(match))
    .map(summarize)
    .sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
}

export async function requireAccount(store: StateStore, address: string): Promise<AccountRecord> {
  const rec = await store.get(address);
  if (!rec)
    throw new OperatorError(
      `no account ${address} in ${store.location}`,
      'check the spelling (autoport accounts list shows what the store holds); an account appears after its first login through the gateway or an import',
      'ENOACCOUNT',
    );
  return rec;
}

export async function showAccount(store: StateStore, address: string): Promise<AccountDetail> {
  const r = await requireAccount(store, address);
  const d: AccountDetail = {
    ...summarize(r),
    errors: r.errors.map((e) => ({ ...e })),
    folders: Object.values(r.folders)
      .map((f) => ({ ...f }))
      .sort((a, b) => (a.source < b.source ? -1 : 1)),
  };
  if (r.pop3Uidls) d.pop3Uidls = Object.keys(r.pop3Uidls).length;
  return d;
}
