/**
 * Total and per-client connection counts, taken when a connection arrives (at TCP accept,
 * before any TLS handshake) and released exactly once when it ends. Clients are counted by
 * clientKey(): IPv4 address, IPv6 /64.
 */
import { clientKey } from '../net-address.js';

export class ConnectionLimiter {
  private total = 0;
  private readonly perClient = new Map<string, number>();

  constructor(private readonly limits: () => { maxTotal: number; maxPerAddress: number }) {}

  /** A release function (idempotent), or undefined when a limit is reached. */
  acquire(address: string): (() => void) | undefined {
    const l = this.limits();
    const key = clientKey(address);
    const mine = this.perClient.get(key) ?? 0;
    if (this.total >= l.maxTotal || mine >= l.maxPerAddress) return undefined;
    this.total++;
    this.perClient.set(key, mine + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total--;
      const n = (this.perClient.get(key) ?? 1) - 1;
      if (n <= 0) this.perClient.delete(key);
      else this.perClient.set(key, n);
    };
  }

  get open(): number {
    return this.total;
  }

  /** connections counted for the client of `address` now */
  openFor(address: string): number {
    return this.perClient.get(clientKey(address)) ?? 0;
  }
}
