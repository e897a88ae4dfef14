/**
 * Where the UIDL continuity map lives: one side file per account beside the state
 * (side-files.ts), never in the account record (a maildrop may hold 100k messages). The
 * copy writes it whole after each run; the gateway reads it when a moved account logs in
 * over POP3, through a small cache that notices a newer file by its mtime.
 */
import type { StateStore } from '../../state/types.js';
import type { UidlMatch } from './match.js';

export const KEY = 'pop3-uidls';
const VERSION = 1;

type HasSide = Pick<StateStore, 'side'>;

export interface UidlFile {
  version: number;
  recordedAt: string;
  matched: number;
  ambiguous: number;
  unmatched: number;
  /** destination POP3 UIDL -> source POP3 UIDL */
  pairs: Array<[string, string]>;
}

/** destination UIDL -> source UIDL of one account */
export type UidlLookup = ReadonlyMap<string, string>;

export async function saveUidls(
  store: HasSide,
  address: string,
  m: UidlMatch,
  at: Date,
): Promise<void> {
  const file: UidlFile = {
    version: VERSION,
    recordedAt: at.toISOString(),
    matched: m.matched,
    ambiguous: m.ambiguous,
    unmatched: m.unmatched,
    pairs: m.pairs,
  };
  await store.side.write(address, KEY, file);
}

export async function loadUidls(store: HasSide, address: string): Promise<UidlFile | undefined> {
  const f = await store.side.read<UidlFile>(address, KEY);
  if (!f || f.version !== VERSION || !Array.isArray(f.pairs)) return undefined;
  return f;
}

/** accounts whose map stays in memory between logins */
const CACHED_ACCOUNTS = 64;

/** The gateway's view: the map of an account, re-read when it was written again. */
export class UidlMaps {
  private readonly cache = new Map<string, { mtimeMs: number; map: UidlLookup }>();

  constructor(private readonly store: HasSide) {}

  /** undefined: no map (never moved, or nothing to rewrite) */
  async get(address: string): Promise<UidlLookup | undefined> {
    const key = address.toLowerCase();
    const mtimeMs = await this.store.side.version(key, KEY);
    if (mtimeMs === undefined) return void this.cache.delete(key);
    const hit = this.cache.get(key);
    this.cache.delete(key);
    if (hit && hit.mtimeMs === mtimeMs) {
      this.cache.set(key, hit);
      return hit.map.size ? hit.map : undefined;
    }
    const f = await loadUidls(this.store, key);
    const map: UidlLookup = new Map(f?.pairs ?? []);
    this.cache.set(key, { mtimeMs, map });
    for (const old of this.cache.keys()) {
      if (this.cache.size <= CACHED_ACCOUNTS) break;
      this.cache.delete(old);
    }
    return map.size ? map : undefined;
  }
}
