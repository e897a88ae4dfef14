/**
 * Total and per-address connection counts, taken when a connection arrives and released
 * exactly once when it ends.
 */
export class ConnectionLimiter {
  private total = 0;
  private readonly perAddress = new Map<string, number>();

  constructor(private readonly limits: () => { maxTotal: number; maxPerAddress: number }) {}

  /** A release function, or undefined when a limit is reached. */
  acquire(address: string): (() => void) | undefined {
    const l = this.limits();
    const mine = this.perAddress.get(address) ?? 0;
    if (this.total >= l.maxTotal || mine >= l.maxPerAddress) return undefined;
    this.total++;
    this.perAddress.set(address, mine + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total--;
      const n = (this.perAddress.get(address) ?? 1) - 1;
      if (n <= 0) this.perAddress.delete(address);
      else this.perAddress.set(address, n);
    };
  }

  get open(): number {
    return this.total;
  }
}
