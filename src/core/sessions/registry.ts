/**
 * Spliced sessions by account: the worker pool asks "is this user online?" (the white
 * paper moves an account once the user "just finished checking their email") and closes
 * an account's sessions when its transfer lock starts; shutdown closes what is left.
 */
import type { CloseReason } from '../bus.js';
import type { Splice } from './splice.js';
import type { SessionInfo } from './types.js';

interface Entry {
  info: SessionInfo;
  splice: Splice;
}

export class SessionRegistry {
  private readonly byUser = new Map<string, Set<Entry>>();
  /** by session id, for the monitor's live byte counters */
  private readonly byId = new Map<string, Entry>();
  private total = 0;
  /** logins in progress per account: they count as "online" for the worker pool */
  private readonly holds = new Map<string, number>();
  private readonly quietListeners = new Set<(user: string) => void>();

  private static key(user: string): string {
    return user.toLowerCase();
  }

  add(user: string, info: SessionInfo, splice: Splice): () => void {
    const key = SessionRegistry.key(user);
    let set = this.byUser.get(key);
    if (!set) this.byUser.set(key, (set = new Set()));
    const entry: Entry = { info, splice };
    set.add(entry);
    this.byId.set(info.id, entry);
    this.total++;
    let removed = false;
    return () => {
      if (removed) return;
      removed = true;
      this.total--;
      set.delete(entry);
      if (this.byId.get(info.id) === entry) this.byId.delete(info.id);
      if (set.size === 0) {
        this.byUser.delete(key);
        for (const fn of this.quietListeners) fn(key);
      }
    };
  }

  /**
   * Mark a login in progress (from the source login until the splice is registered), so
   * the worker pool does not start moving an account whose session is being set up.
   */
  hold(user: string): () => void {
    const key = SessionRegistry.key(user);
    this.holds.set(key, (this.holds.get(key) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const n = (this.holds.get(key) ?? 1) - 1;
      if (n > 0) this.holds.set(key, n);
      else this.holds.delete(key);
    };
  }

  /** spliced sessions (all, or one account's, logins in progress included) */
  count(user?: string): number {
    if (user === undefined) return this.total;
    const key = SessionRegistry.key(user);
    return (this.byUser.get(key)?.size ?? 0) + (this.holds.get(key) ?? 0);
  }

  /** bytes one spliced session has moved so far; undefined when it is not spliced (any more) */
  bytes(sessionId: string): { bytesIn: number; bytesOut: number } | undefined {
    const splice = this.byId.get(sessionId)?.splice;
    return splice && { bytesIn: splice.bytesIn, bytesOut: splice.bytesOut };
  }

  /** Close every session of one account; returns how many were closed. */
  kick(user: string, reason: CloseReason): number {
    const set = this.byUser.get(SessionRegistry.key(user));
    if (!set) return 0;
    const entries = [...set];
    for (const e of entries) e.splice.close(reason);
    return entries.length;
  }

  closeAll(reason: CloseReason): number {
    const all = [...this.byUser.values()].flatMap((s) => [...s]);
    for (const e of all) e.splice.close(reason);
    return all.length;
  }

  /** called with the account whose last session just ended */
  onQuiet(fn: (user: string) => void): () => void {
    this.quietListeners.add(fn);
    return () => void this.quietListeners.delete(fn);
  }
}
