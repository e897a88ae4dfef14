/**
 * Brute-force brakes. The source sees every login from the gateway's address, so its own
 * fail2ban would ban the gateway (and everyone behind it) unless the gateway slows and
 * limits failed logins itself (protocol-notes.md, "Logins"):
 *   - each failure is answered after a delay (Dovecot 2 s, perdition 3 s), but the number
 *     of sockets held in that delay is capped: beyond it the reply goes out at once and the
 *     connection is closed, so an attacker cannot pin thousands of sockets;
 *   - failures are counted per client address and per account over a window; beyond the
 *     limit logins are refused before they reach the source at all.
 * Counters live in bounded maps (oldest forgotten first).
 */
import type { BrakeLimits } from '../limits.js';

interface Counter {
  count: number;
  since: number;
}

class BoundedCounters {
  private readonly map = new Map<string, Counter>();
  constructor(
    private readonly windowMs: number,
    private readonly max: number,
  ) {}

  get(key: string, now: number): number {
    const c = this.map.get(key);
    if (!c) return 0;
    if (now - c.since >= this.windowMs) {
      this.map.delete(key);
      return 0;
    }
    return c.count;
  }

  add(key: string, now: number): number {
    let c = this.map.get(key);
    if (!c || now - c.since >= this.windowMs) c = { count: 0, since: now };
    c.count++;
    this.map.delete(key); // re-insert: Map order is our LRU order
    this.map.set(key, c);
    if (this.map.size > this.max) {
      const oldest = this.map.keys().next().value;
      if (oldest !== undefined) this.map.delete(oldest);
    }
    return c.count;
  }

  clear(key: string): void {
    this.map.delete(key);
  }

  get size(): number {
    return this.map.size;
  }
}

export interface BrakeDeps {
  now?: () => number;
  /** the timer (tests pass a fake one) */
  sleep?: (ms: number) => Promise<void>;
}

export class Brakes {
  private readonly byAddress: BoundedCounters;
  private readonly byAccount: BoundedCounters;
  private delayed = 0;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(
    private readonly limits: BrakeLimits,
    deps: BrakeDeps = {},
  ) {
    this.byAddress = new BoundedCounters(limits.windowMs, limits.maxTracked);
    this.byAccount = new BoundedCounters(limits.windowMs, limits.maxTracked);
    this.now = deps.now ?? Date.now;
    this.sleep = deps.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  /** Is this login refused before it is even tried? */
  blocked(address: string, account: string): 'address' | 'account' | undefined {
    const now = this.now();
    if (this.byAddress.get(address, now) >= this.limits.maxFailuresPerAddress) return 'address';
    if (this.byAccount.get(account.toLowerCase(), now) >= this.limits.maxFailuresPerAccount)
      return 'account';
    return undefined;
  }

  failed(address: string, account: string): void {
    const now = this.now();
    this.byAddress.add(address, now);
    this.byAccount.add(account.toLowerCase(), now);
  }

  /** A correct password clears the account's counter (not the address's: one valid account must not unlock guessing others). */
  succeeded(account: string): void {
    this.byAccount.clear(account.toLowerCase());
  }

  /**
   * Wait before answering a failure. Returns false when too many sockets are already
   * waiting: answer at once and close the connection instead.
   */
  async delay(): Promise<boolean> {
    if (this.delayed >= this.limits.maxDelayedSockets) return false;
    this.delayed++;
    try {
      await this.sleep(this.limits.failureDelayMs);
      return true;
    } finally {
      this.delayed--;
    }
  }

  get waiting(): number {
    return this.delayed;
  }

  get tracked(): { addresses: number; accounts: number } {
    return { addresses: this.byAddress.size, accounts: this.byAccount.size };
  }
}
