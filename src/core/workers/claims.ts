/**
 * What this node moves or sweeps, claimed across the nodes sharing the store (Cluster in
 * state/types.ts). The cluster grants a claim again to the node that holds it, so the set
 * kept here is what keeps this node's own moves, sweeps and orphan repairs of one account
 * apart.
 */
import type { Logger } from '../log/logger.js';
import type { Cluster } from '../state/types.js';

/** how long after a failed release it is tried again */
const RELEASE_RETRY_MS = 5_000;

export class Claims {
  /** claimed, or being claimed, by this node */
  private readonly held = new Set<string>();
  /** given back here, but the database did not take the release: tried again */
  private readonly unreleased = new Set<string>();
  /** a retried release in flight, which a new claim of the account waits for */
  private readonly releasing = new Map<string, Promise<void>>();
  private retry: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly cluster: Cluster,
    private readonly logger: Logger,
    private readonly retryMs = RELEASE_RETRY_MS,
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
    // still ours from a release that failed: claiming it again keeps it, so no retry
    this.unreleased.delete(key);
    await this.releasing.get(key);
    let ok = false;
    try {
      ok = await this.cluster.claim(key);
    } catch (err) {
      this.logger.warn('cannot claim an account; will retry', { address: key, err });
    }
    if (!ok) this.held.delete(key);
    return ok;
  }

  /**
   * Hand the account back, whatever happened to the work. A release the database does
   * not take is tried again every few seconds: until then the other nodes cannot take
   * the account (they could once this node's heartbeat stops).
   */
  async give(address: string): Promise<void> {
    const key = address.toLowerCase();
    try {
      await this.cluster.release(key);
    } catch (err) {
      this.logger.warn('cannot release a claimed account; will retry', { address: key, err });
      this.unreleased.add(key);
      this.retryLater();
    } finally {
      this.held.delete(key);
    }
  }

  /** No more retries (the node stops; its claims go with its heartbeat row). */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.retry);
  }

  private retryLater(): void {
    if (this.retry || this.stopped) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      void this.retryReleases();
    }, this.retryMs);
    this.retry.unref();
  }

  private async retryReleases(): Promise<void> {
    for (const key of [...this.unreleased]) {
      if (this.stopped || !this.unreleased.has(key)) continue;
      const done = this.cluster.release(key);
      const settled = done.then(
        () => void this.unreleased.delete(key),
        () => undefined,
      );
      this.releasing.set(key, settled);
      await settled;
      this.releasing.delete(key);
      if (this.unreleased.has(key)) return this.retryLater(); // the database is still away
    }
  }
}
