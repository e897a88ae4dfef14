/**
 * Brute-force brakes, in the manner of Dovecot's auth penalty and fail2ban. The source
 * sees every login from the gateway's address, so its own fail2ban would ban the gateway
 * (and everyone behind it) unless the gateway stops guessing first (protocol-notes.md,
 * "Logins"). What is braked is the ADDRESS that guesses, never the account's owner:
 *
 *   1. An attempt counts from the moment it starts (`begin`), not when the source has
 *      answered: attempts in flight are added to the failures, so a thousand parallel
 *      guesses cannot all pass the check before the first one fails. Concurrent attempts
 *      are also capped per client address and per account.
 *   2. Failures are counted per client address (IPv6 by its /64, net-address.ts) and per
 *      (account, address) pair; beyond their limits that address is refused before its
 *      logins reach a backend. Another address, with the right password, is not.
 *   3. Each failure is answered after a delay that doubles with the address's (or the
 *      pair's) failures up to a cap, like Dovecot's auth_penalty. Failures for an account
 *      from everywhere only make its failures slow (the cap), they never refuse a login.
 *   4. The sockets held in that delay are capped: beyond it the reply goes out at once and
 *      the connection is closed, so an attacker cannot pin thousands of sockets.
 *   5. A trusted client address (`brakes.trusted`, Dovecot's login_trusted_networks: a
 *      webmail host, an office NAT) logs in for many users, so its own total says nothing
 *      about one guesser: it is never refused for it nor capped per address, and its
 *      delays double with the pair's failures only. The pair limit, the account's cap and
 *      the slow account still hold, so one account guessed through it is braked as before.
 *      Its failures are counted, logged and published like any other; each node decides
 *      trust with its own list when a login begins.
 *
 * Counters live in bounded maps (oldest forgotten first). With several gateway nodes on one
 * store each failure counts on every node: the node that saw it publishes its keys (the
 * client address key and the account, never a password) on the cluster, batched over
 * 100 ms (brake-outbox.ts), and the others
 * add it to their counters (and a success forgets the pair everywhere), so guesses spread
 * over the nodes behind a load balancer meet the same limits as on one node.
 */
import type { BrakeLimits } from '../limits.js';
import { AddressBlocks, clientKey } from '../net-address.js';
import type { Cluster } from '../state/types.js';
import { BrakeOutbox, entriesOf } from './brake-outbox.js';

/** the cluster topic of the brakes' messages */
export const BRAKE_TOPIC = 'brake';

/** What a node publishes: a failure (or a success) of account `c` from address key `a`. */
interface BrakeMessage {
  a: string;
  c: string;
  ok?: true;
}

/** longer than any address key or account name: a message that is not ours */
const MAX_KEY_CHARS = 512;

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

/** Attempts in flight per key; an entry lives only while its count is above zero. */
class InFlight {
  private readonly map = new Map<string, number>();
  get(key: string): number {
    return this.map.get(key) ?? 0;
  }
  add(key: string): void {
    this.map.set(key, this.get(key) + 1);
  }
  remove(key: string): void {
    const n = this.get(key) - 1;
    if (n > 0) this.map.set(key, n);
    else this.map.delete(key);
  }
  get size(): number {
    return this.map.size;
  }
}

export interface BrakeDeps {
  /** the gateway nodes sharing the store: failures are published and heard there */
  cluster?: Pick<Cluster, 'publish' | 'onMessage'>;
  /** how long failures gather before they are published together (0: each at once) */
  newsBatchMs?: number;
  now?: () => number;
  /** the timer (tests pass a fake one) */
  sleep?: (ms: number) => Promise<void>;
  /** client addresses exempt from the per-address brakes (point 5); setTrusted() replaces it */
  trusted?: AddressBlocks;
}

/** Why a login was refused before it was tried. */
export type BrakeRefusal =
  /** the address failed too often (or has too many attempts in flight with its failures) */
  | 'address'
  /** this address failed too often for this account */
  | 'account-address'
  /** too many attempts at once from this address */
  | 'address-concurrency'
  /** too many attempts at once for this account */
  | 'account-concurrency';

/**
 * One login attempt, in flight from `begin` until exactly one of its ends. Later calls
 * do nothing, so a flow can call `end()` in a `finally` whatever happened before.
 */
export interface Attempt {
  /** the password was right: the pair's failures are forgotten */
  succeeded(): void;
  /**
   * the password was wrong: counted, then the reply waits out the penalty. Resolves false
   * when too many sockets already wait: answer at once and close the connection.
   */
  failed(): Promise<boolean>;
  /** neither (backend down, store error): nothing is counted */
  end(): void;
}

export class Brakes {
  private readonly byAddress: BoundedCounters;
  private readonly byPair: BoundedCounters;
  private readonly byAccount: BoundedCounters;
  private readonly inFlightAddress = new InFlight();
  private readonly inFlightPair = new InFlight();
  private readonly inFlightAccount = new InFlight();
  private delayed = 0;
  private flying = 0;
  /** attempts waiting in admit() for room under the concurrency caps; woken when one ends */
  private readonly waiters = new Set<() => void>();
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly outbox: BrakeOutbox<BrakeMessage> | undefined;
  private readonly unsubscribe: () => void;
  private trusted: AddressBlocks;

  constructor(
    private readonly limits: BrakeLimits,
    deps: BrakeDeps = {},
  ) {
    this.byAddress = new BoundedCounters(limits.windowMs, limits.maxTracked);
    this.byPair = new BoundedCounters(limits.windowMs, limits.maxTracked);
    this.byAccount = new BoundedCounters(limits.windowMs, limits.maxTracked);
    this.now = deps.now ?? Date.now;
    this.sleep = deps.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.trusted = deps.trusted ?? AddressBlocks.none;
    this.outbox = deps.cluster && new BrakeOutbox(deps.cluster, BRAKE_TOPIC, deps.newsBatchMs);
    this.unsubscribe =
      deps.cluster?.onMessage(BRAKE_TOPIC, (data) => {
        for (const m of entriesOf(data)) this.heard(m);
      }) ?? (() => undefined);
  }

  /** A new trusted list (config reload): logins that begin from now on use it. */
  setTrusted(trusted: AddressBlocks): void {
    this.trusted = trusted;
  }

  /** send what waits and stop hearing the other nodes (the gateway's stop) */
  close(): void {
    this.outbox?.flush();
    this.unsubscribe();
  }

  /** Another node's failure or success: counted here as if seen here, not published again. */
  private heard(data: unknown): void {
    const m = data as Partial<BrakeMessage> | null;
    if (typeof m?.a !== 'string' || typeof m.c !== 'string') return;
    if (m.a.length > MAX_KEY_CHARS || m.c.length > MAX_KEY_CHARS) return;
    const keys = pairKeys(m.a, m.c.toLowerCase());
    if (m.ok === true) this.byPair.clear(keys.pair);
    else this.tally(keys);
  }

  private tell(k: Keys, ok?: true): void {
    const m: BrakeMessage = { a: k.address, c: k.account, ...(ok ? { ok } : {}) };
    this.outbox?.send(m);
  }

  /**
   * Start an attempt, or say why it is refused without being tried. Failures and attempts
   * in flight count together, so parallel attempts cannot overrun a limit.
   */
  begin(address: string, account: string): Attempt | { refused: BrakeRefusal } {
    const keys = this.keysOf(address, account);
    const refused = this.refusal(keys);
    if (refused) return { refused };
    this.inFlightAddress.add(keys.address);
    this.inFlightPair.add(keys.pair);
    this.inFlightAccount.add(keys.account);
    this.flying++;
    let open = true;
    const leave = (): boolean => {
      if (!open) return false;
      open = false;
      this.flying--;
      this.inFlightAddress.remove(keys.address);
      this.inFlightPair.remove(keys.pair);
      this.inFlightAccount.remove(keys.account);
      for (const wake of this.waiters) wake();
      return true;
    };
    return {
      succeeded: () => {
        if (!leave()) return;
        // published only when there was something to forget: most logins are first tries
        if (this.byPair.get(keys.pair, this.now()) > 0) this.tell(keys, true);
        this.byPair.clear(keys.pair);
      },
      failed: async () => {
        if (!leave()) return true;
        return this.delay(this.count(keys));
      },
      end: () => void leave(),
    };
  }

  /**
   * begin(), after waiting (up to concurrencyWaitMs) while the address or the account has
   * as many attempts in flight as allowed. Parallel guesses still reach the source at most
   * maxConcurrentPerAddress at a time, and each failure counts before the next one is let
   * through; right passwords in a burst from one address wait their turn instead of being
   * refused.
   */
  async admit(address: string, account: string): Promise<Attempt | { refused: BrakeRefusal }> {
    const keys = this.keysOf(address, account);
    const deadline = Date.now() + this.limits.concurrencyWaitMs;
    while (this.concurrencyFull(keys) && this.waiters.size < this.limits.maxWaitingAttempts) {
      const left = deadline - Date.now();
      if (left <= 0 || !(await this.untilOneEnds(left))) break;
    }
    return this.begin(address, account);
  }

  /** true when an attempt ended, false when `ms` passed first */
  private untilOneEnds(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const done = (ended: boolean): void => {
        clearTimeout(timer);
        this.waiters.delete(wake);
        resolve(ended);
      };
      const wake = (): void => done(true);
      const timer = setTimeout(() => done(false), ms);
      this.waiters.add(wake);
    });
  }

  /** attempts waiting in admit() */
  get queued(): number {
    return this.waiters.size;
  }

  private keysOf(address: string, account: string): Keys {
    return pairKeys(clientKey(address), account.toLowerCase(), this.trusted.has(address));
  }

  private concurrencyFull(k: Keys): BrakeRefusal | undefined {
    if (!k.trusted && this.inFlightAddress.get(k.address) >= this.limits.maxConcurrentPerAddress)
      return 'address-concurrency';
    if (this.inFlightAccount.get(k.account) >= this.limits.maxConcurrentPerAccount)
      return 'account-concurrency';
    return undefined;
  }

  private refusal(k: Keys): BrakeRefusal | undefined {
    const l = this.limits;
    const now = this.now();
    if (!k.trusted) {
      const inFlight = this.inFlightAddress.get(k.address);
      if (inFlight >= l.maxConcurrentPerAddress) return 'address-concurrency';
      if (this.byAddress.get(k.address, now) + inFlight >= l.maxFailuresPerAddress)
        return 'address';
    }
    if (this.byPair.get(k.pair, now) + this.inFlightPair.get(k.pair) >= l.maxFailuresPerAccount)
      return 'account-address';
    if (this.inFlightAccount.get(k.account) >= l.maxConcurrentPerAccount)
      return 'account-concurrency';
    return undefined;
  }

  /** Count a failure seen here, tell the other nodes; the delay its reply waits. */
  private count(k: Keys): number {
    const { address, pair, account } = this.tally(k);
    this.tell(k);
    return this.penalty(k.trusted ? pair : Math.max(address, pair), account);
  }

  private tally(k: Keys): { address: number; pair: number; account: number } {
    const now = this.now();
    return {
      address: this.byAddress.add(k.address, now),
      pair: this.byPair.add(k.pair, now),
      account: this.byAccount.add(k.account, now),
    };
  }

  /**
   * Doubling per failure of the address, or of the pair for a trusted address (Dovecot's
   * auth_penalty), the cap for an account under attack.
   */
  private penalty(failures: number, accountFailures = 0): number {
    const { failureDelayMs: base, maxFailureDelayMs: cap } = this.limits;
    if (accountFailures > this.limits.slowAccountAfter) return Math.max(base, cap);
    const doublings = Math.min(Math.max(failures - 1, 0), 30);
    return Math.max(base, Math.min(cap, base * 2 ** doublings));
  }

  /** Wait before answering a failure; false when too many sockets already wait. */
  private async delay(ms: number): Promise<boolean> {
    if (this.delayed >= this.limits.maxDelayedSockets) return false;
    this.delayed++;
    try {
      await this.sleep(ms);
      return true;
    } finally {
      this.delayed--;
    }
  }

  get waiting(): number {
    return this.delayed;
  }

  /** attempts begun and not yet ended */
  get inFlight(): number {
    return this.flying;
  }

  get tracked(): { addresses: number; accounts: number; pairs: number } {
    return {
      addresses: this.byAddress.size,
      accounts: this.byAccount.size,
      pairs: this.byPair.size,
    };
  }
}

interface Keys {
  address: string;
  account: string;
  pair: string;
  /** the client address is in the trusted list (a heard failure is only counted: false) */
  trusted: boolean;
}

function pairKeys(a: string, acct: string, trusted = false): Keys {
  // NUL cannot occur in a normalised account name nor in an address key.
  return { address: a, account: acct, pair: `${acct}\0${a}`, trusted };
}
