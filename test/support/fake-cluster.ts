/**
 * A Cluster for unit tests that need two nodes' semantics without a database: the test
 * says which accounts another node holds (claims refused), fires changes and the loss of
 * the cluster, and reads back what this node claimed and released. Orphans are the store's
 * records mid-move that no node (this one or the other) holds, as PgCluster answers.
 */
import type {
  AccountRecord,
  Cluster,
  ClusterChange,
  NodeView,
  StateStore,
} from '../../src/core/state/types.js';

export class FakeCluster implements Cluster {
  readonly node = 'this-node';
  readonly name = 'this';
  readonly shared = true;
  /** accounts another node holds: claims refused */
  readonly other = new Set<string>();
  /** what this node holds now */
  readonly held = new Set<string>();
  /** every claim asked, granted or not, and every release, in order */
  readonly log: string[] = [];
  private readonly changes = new Set<(c: ClusterChange) => void>();
  private readonly lost = new Set<() => void>();
  store: StateStore | undefined;

  async join(): Promise<void> {}

  async claim(address: string): Promise<boolean> {
    const ok = !this.other.has(address);
    this.log.push(`claim ${address} ${ok ? 'granted' : 'refused'}`);
    if (ok) this.held.add(address);
    return ok;
  }

  async release(address: string): Promise<void> {
    this.log.push(`release ${address}`);
    this.held.delete(address);
  }

  async orphans(limit: number): Promise<AccountRecord[]> {
    const all = await this.store!.list();
    return all
      .filter((r) => r.transferPhase !== undefined || r.state === 'transferring')
      .filter((r) => !this.held.has(r.address))
      .slice(0, limit);
  }

  onChange(fn: (change: ClusterChange) => void): () => void {
    this.changes.add(fn);
    return () => this.changes.delete(fn);
  }

  publish(): void {}

  onMessage(): () => void {
    return () => undefined;
  }

  onLost(fn: () => void): () => void {
    this.lost.add(fn);
    return () => this.lost.delete(fn);
  }

  publishView(): void {}

  async nodes(): Promise<NodeView[]> {
    return [];
  }

  async leave(): Promise<void> {}

  /** another node changed an account */
  change(c: Omit<ClusterChange, 'node'>): void {
    for (const fn of this.changes) fn({ ...c, node: 'other-node' });
  }

  /** this node's heartbeat failed for a lease */
  lose(): void {
    for (const fn of this.lost) fn();
  }

  /** subscribers still listening (changes and losses) */
  get listeners(): number {
    return this.changes.size + this.lost.size;
  }
}

/**
 * The store with `cluster` in place of its own (every other member is the store's);
 * `calls` counts the store's methods called through it.
 */
export function withCluster(
  store: StateStore,
  cluster: FakeCluster,
): StateStore & { calls: Map<string, number>; lists: unknown[] } {
  cluster.store = store;
  const calls = new Map<string, number>();
  const lists: unknown[] = [];
  return new Proxy(store, {
    get(target, key) {
      if (key === 'cluster') return cluster;
      if (key === 'calls') return calls;
      if (key === 'lists') return lists;
      const value: unknown = Reflect.get(target, key, target);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        calls.set(String(key), (calls.get(String(key)) ?? 0) + 1);
        if (key === 'list') lists.push(args[0]);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  }) as StateStore & { calls: Map<string, number>; lists: unknown[] };
}
