/** The cluster of one, for the JSON store (see Cluster in types.ts). */
import { makeNodeId } from './node-id.js';
import type { AccountRecord, Cluster, NodeView } from './types.js';

/**
 * The cluster of one: the JSON store is owned by one process (its lock), so a claim is
 * always granted and only marks what this process is moving; everything else left
 * mid-move (from before the store was opened) is an orphan.
 */
export class LocalCluster implements Cluster {
  readonly shared = false;
  readonly node: string;
  private readonly claims = new Set<string>();
  private view: unknown;
  private readonly startedAt = new Date().toISOString();

  constructor(
    readonly name: string,
    private readonly moving: (limit: number) => Promise<AccountRecord[]>,
  ) {
    this.node = makeNodeId(name);
  }

  async join(): Promise<void> {}

  /** Always granted: no other node can hold it, and the caller keeps its own runs apart. */
  async claim(address: string): Promise<boolean> {
    this.claims.add(address.toLowerCase());
    return true;
  }

  async release(address: string): Promise<void> {
    this.claims.delete(address.toLowerCase());
  }

  async orphans(limit: number): Promise<AccountRecord[]> {
    const out: AccountRecord[] = [];
    for (const rec of await this.moving(Infinity)) {
      if (out.length >= limit) break;
      if (!this.claims.has(rec.address)) out.push(rec);
    }
    return out;
  }

  onChange(): () => void {
    return () => undefined; // no other node
  }

  publish(): void {}

  onMessage(): () => void {
    return () => undefined;
  }

  onLost(): () => void {
    return () => undefined; // nothing to lose: the lock file is held for the process
  }

  publishView(view: unknown): void {
    this.view = view;
  }

  async nodes(): Promise<NodeView[]> {
    const now = new Date().toISOString();
    return [
      {
        node: this.node,
        name: this.name,
        startedAt: this.startedAt,
        seenAt: now,
        alive: true,
        view: this.view,
      },
    ];
  }

  async leave(): Promise<void> {}
}
