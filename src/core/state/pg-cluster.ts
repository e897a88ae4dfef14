/**
 * Several gateway nodes on one PostgreSQL (see Cluster in types.ts).
 *
 * - Liveness: each joined node keeps a row in autoport_nodes and touches it every
 *   heartbeatMs; a node whose row is older than leaseMs (PostgreSQL's clock, so the nodes'
 *   clocks do not matter) is dead.
 * - Claims: an account row's claim_node names the node moving or sweeping it. A claim is
 *   granted when the row is free, ours, or held by a dead node; the row is taken with
 *   FOR UPDATE SKIP LOCKED, so a node never waits on a row another node is changing.
 * - Changes and messages: the store's update() sends a NOTIFY on autoport_changes in the
 *   transaction that changes an account's state or phase (delivered at commit); publish()
 *   sends on autoport_messages. One dedicated connection LISTENs on both, reconnecting
 *   while the node is joined.
 * - Lost: when the heartbeat has failed for longer than the lease minus one beat, other
 *   nodes may already count this one dead; onLost tells the worker pool to stop what it
 *   runs on claims.
 */
import pg from 'pg';
import { StoreReadOnlyError } from './errors.js';
import type { AccountRecord, Cluster, ClusterChange, ClusterTiming, NodeView } from './types.js';

export const CHANGES_CHANNEL = 'autoport_changes';
export const MESSAGES_CHANNEL = 'autoport_messages';
/** a NOTIFY payload must stay under 8000 bytes (PostgreSQL's limit) */
const MAX_MESSAGE_BYTES = 7900;
/** nodes not seen for this long are deleted when a node joins */
const FORGET_NODES_AFTER = '1 day';

/** The NOTIFY payload of a change, as pg-store.ts sends it. */
export function changePayload(change: ClusterChange): string {
  return JSON.stringify({ a: change.address, s: change.state, p: change.phase, n: change.node });
}

/** SQL true when `col` names a node with a heartbeat younger than the lease ($lease ms). */
function liveNode(col: string, leaseParam: string): string {
  return `EXISTS (SELECT 1 FROM autoport_nodes n WHERE n.node = ${col}
            AND n.seen_at > now() - ${leaseParam} * interval '1 millisecond')`;
}

type Listener<T extends unknown[]> = (...args: T) => void;

export class PgCluster implements Cluster {
  readonly shared = true;
  private joined = false;
  private beat: NodeJS.Timeout | undefined;
  private lastBeatOk = 0;
  private lostFired = false;
  private view: unknown;
  private listener: pg.Client | undefined;
  private reconnect: NodeJS.Timeout | undefined;
  /** a LISTEN connection was up before: the next one follows a gap */
  private listened = false;
  private readonly changes = new Set<Listener<[ClusterChange]>>();
  private readonly messages = new Map<string, Set<Listener<[unknown, string]>>>();
  private readonly lost = new Set<Listener<[]>>();

  constructor(
    readonly node: string,
    readonly name: string,
    private readonly pool: pg.Pool,
    private readonly connectionString: string,
    private readonly timing: ClusterTiming,
    /** the store's location when it is open read-only: then this is no node (see below) */
    private readonly readOnlyStore?: string,
  ) {}

  async join(): Promise<void> {
    this.assertNode();
    if (this.joined) return;
    await this.pool.query(
      `DELETE FROM autoport_nodes WHERE seen_at < now() - interval '${FORGET_NODES_AFTER}'`,
    );
    await this.heartbeat();
    this.joined = true;
    await this.listen();
    this.beat = setInterval(() => void this.tick(), this.timing.heartbeatMs);
    this.beat.unref();
  }

  /**
   * Granted only while this node's own heartbeat is live: a node the others may already
   * count as dead must not take (or keep taking) accounts they may take over.
   */
  async claim(address: string): Promise<boolean> {
    this.assertNode();
    const { rowCount } = await this.pool.query(
      `UPDATE autoport_accounts a SET claim_node = $2
       WHERE a.address = (SELECT address FROM autoport_accounts WHERE address = $1
                          FOR UPDATE SKIP LOCKED)
         AND (a.claim_node IS NULL OR a.claim_node = $2 OR NOT ${liveNode('a.claim_node', '$3')})
         AND ${liveNode('$2', '$3')}`,
      [address.toLowerCase(), this.node, this.timing.leaseMs],
    );
    return (rowCount ?? 0) > 0;
  }

  async release(address: string): Promise<void> {
    this.assertNode();
    await this.pool.query(
      'UPDATE autoport_accounts SET claim_node = NULL WHERE address = $1 AND claim_node = $2',
      [address.toLowerCase(), this.node],
    );
  }

  async orphans(limit: number): Promise<AccountRecord[]> {
    const { rows } = await this.pool.query(
      `SELECT record FROM autoport_accounts a
       WHERE (a.moving OR a.state = 'transferring')
         AND (a.claim_node IS NULL OR NOT ${liveNode('a.claim_node', '$1')})
       LIMIT $2`,
      [this.timing.leaseMs, limit],
    );
    return rows.map((r) => Object.freeze(r.record as AccountRecord));
  }

  onChange(fn: (change: ClusterChange) => void): () => void {
    this.changes.add(fn);
    return () => this.changes.delete(fn);
  }

  publish(topic: string, data: unknown): void {
    this.assertNode();
    const payload = JSON.stringify({ t: topic, d: data, n: this.node });
    if (Buffer.byteLength(payload) > MAX_MESSAGE_BYTES) return;
    // best effort: a message the database does not take is one the other nodes miss
    this.pool.query('SELECT pg_notify($1, $2)', [MESSAGES_CHANNEL, payload]).catch(() => undefined);
  }

  onMessage(topic: string, fn: (data: unknown, node: string) => void): () => void {
    let set = this.messages.get(topic);
    if (!set) this.messages.set(topic, (set = new Set()));
    set.add(fn);
    return () => set.delete(fn);
  }

  onLost(fn: () => void): () => void {
    this.lost.add(fn);
    return () => this.lost.delete(fn);
  }

  publishView(view: unknown): void {
    this.view = view;
  }

  async nodes(): Promise<NodeView[]> {
    const { rows } = await this.pool.query(
      `SELECT node, name, started_at, seen_at, view,
              seen_at > now() - $1 * interval '1 millisecond' AS alive
       FROM autoport_nodes WHERE seen_at > now() - interval '1 hour'
       ORDER BY name, started_at`,
      [this.timing.leaseMs],
    );
    return rows.map((r) => ({
      node: r.node as string,
      name: r.name as string,
      startedAt: (r.started_at as Date).toISOString(),
      seenAt: (r.seen_at as Date).toISOString(),
      alive: r.alive as boolean,
      ...(r.view === null ? {} : { view: r.view as unknown }),
    }));
  }

  /** Our row goes: our claims are free for the other nodes at once. */
  async leave(): Promise<void> {
    if (!this.joined) return;
    this.joined = false;
    clearInterval(this.beat);
    clearTimeout(this.reconnect);
    const listener = this.listener;
    this.listener = undefined;
    await listener?.end().catch(() => undefined);
    await this.pool
      .query('DELETE FROM autoport_nodes WHERE node = $1', [this.node])
      .catch(() => undefined);
  }

  /**
   * A read-only store (reports, `accounts list` while the gateway runs) writes nothing:
   * no row in autoport_nodes, no claim, no message.
   */
  private assertNode(): void {
    if (this.readOnlyStore !== undefined) throw new StoreReadOnlyError(this.readOnlyStore);
  }

  private async heartbeat(): Promise<void> {
    await this.pool.query(
      `INSERT INTO autoport_nodes (node, name, view) VALUES ($1, $2, $3)
       ON CONFLICT (node) DO UPDATE SET seen_at = now(), view = $3`,
      [this.node, this.name, this.view === undefined ? null : JSON.stringify(this.view)],
    );
    this.lastBeatOk = Date.now();
    this.lostFired = false;
  }

  private async tick(): Promise<void> {
    try {
      await this.heartbeat();
    } catch {
      const late = Date.now() - this.lastBeatOk;
      if (!this.lostFired && late > this.timing.leaseMs - this.timing.heartbeatMs) {
        this.lostFired = true;
        for (const fn of this.lost) fn();
      }
    }
  }

  /** One LISTEN connection while joined; a lost one is replaced a second later. */
  private listen(): Promise<void> {
    const client = new pg.Client({ connectionString: this.connectionString });
    this.listener = client;
    const lost = (): void => {
      if (this.listener !== client) return;
      this.listener = undefined;
      client.end().catch(() => undefined);
      if (!this.joined) return;
      this.reconnect = setTimeout(() => void this.listen(), 1000);
      this.reconnect.unref();
    };
    client.on('error', lost);
    client.on('end', lost);
    client.on('notification', (n) => this.notified(n.channel, n.payload));
    return client
      .connect()
      .then(() => client.query(`LISTEN ${CHANGES_CHANNEL}; LISTEN ${MESSAGES_CHANNEL}`))
      .then(() => {
        if (this.listened) void this.replaySwitches();
        this.listened = true;
      }, lost);
  }

  /**
   * The NOTIFYs sent while this node was not listening are gone (PostgreSQL keeps them
   * only for sessions that listen). The one that must not be missed says an account is
   * being switched on another node (this node's sessions to its source must close), so
   * after a gap the accounts other nodes are moving now are read back and told as changes.
   * A capture or an exclusion missed is found by the worker pool's next tick instead.
   */
  private async replaySwitches(): Promise<void> {
    const { rows } = await this.pool
      .query(
        `SELECT address, state, record->>'transferPhase' AS phase, claim_node
         FROM autoport_accounts
         WHERE (moving OR state = 'transferring') AND claim_node IS DISTINCT FROM $1`,
        [this.node],
      )
      .catch(() => ({ rows: [] }));
    for (const r of rows as Array<Record<string, string | null>>) {
      const change = {
        address: r.address,
        state: r.state,
        node: r.claim_node ?? 'unknown',
        ...(r.phase ? { phase: r.phase } : {}),
      } as ClusterChange;
      for (const fn of this.changes) fn(change);
    }
  }

  private notified(channel: string, payload: string | undefined): void {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(payload ?? '') as Record<string, unknown>;
    } catch {
      return; // not ours
    }
    if (msg.n === this.node || typeof msg.n !== 'string') return;
    if (channel === CHANGES_CHANNEL && typeof msg.a === 'string') {
      const change = {
        address: msg.a,
        state: msg.s,
        node: msg.n,
        ...(msg.p ? { phase: msg.p } : {}),
      } as ClusterChange;
      for (const fn of this.changes) fn(change);
    } else if (channel === MESSAGES_CHANNEL && typeof msg.t === 'string') {
      for (const fn of this.messages.get(msg.t) ?? []) fn(msg.d, msg.n);
    }
  }
}
