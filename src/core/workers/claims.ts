/**
 * What this node moves or sweeps, claimed across the nodes sharing the store (Cluster in
 * state/types.ts). The cluster grants a claim again to the node that holds it, so the set
 * kept here is what keeps this node's own moves, sweeps and orphan repairs of one account
 * apart.
 */
import type { Logger } from '../log/logger.js';
import type { Cluster } from '../state/types.js';

export class Claims {
  /** claimed, or being claimed, by this node */
  private readonly held = new Set<string>();

  constructor(
    private readonly cluster: Cluster,
    private readonly logger: Logger,
  ) {}

  has(address: string): boolean {
    return this.held.has(address.toLowerCase());
  }

  /**
   * True when this node may now work on the account: nothing here holds it and no other
   * live node does. A store that cannot answer is a refusal (the next tick asks again).
   */
  async take(address: string): Promise<boolean> {
    const key = address.toLowerCase();
    if (this.held.has(key)) return false;
    this.held.add(key);
    let ok = false;
    try {
      ok = await this.cluster.claim(key);
    } catch (err) {
      this.logger.warn('cannot claim an account; will retry', { address: key, err });
    }
    if (!ok) this.held.delete(key);
    return ok;
  }

  /** Hand the account back, whatever happened to the work. */
  async give(address: string): Promise<void> {
    const key = address.toLowerCase();
    try {
      await this.cluster.release(key);
    } catch (err) {
      // the claim stays ours while this node lives; a restart or the lease frees it
      this.logger.warn('cannot release a claimed account', { address: key, err });
    } finally {
      this.held.delete(key);
    }
  }
}
