/**
 * The other gateway nodes in this node's snapshot. Each node sees only its own sessions
 * on its bus, so each publishes a bounded summary of them (its newest open sessions, its
 * running transfers) with its heartbeat (Cluster.publishView), and a snapshot reads every
 * node's last summary (Cluster.nodes) at most every NODES_POLL_MS and merges those of the
 * live ones. A failing or slow read keeps the last good one and says so: the monitor must
 * not go blank, nor the control socket stall, because the database hiccups.
 */
import type { SessionProtocol } from '../bus.js';
import type { Cluster, NodeView } from '../state/types.js';
import {
  SNAPSHOT_SESSIONS,
  type LiveSession,
  type LiveTransfer,
  type MonitorSnapshot,
  type NodeSummary,
} from './protocol.js';

/** the other nodes are read at most this often, whatever the number of monitors */
export const NODES_POLL_MS = 2_000;
/** a snapshot waits this long for a fresh read, then goes on with the last good one */
export const NODES_WAIT_MS = 1_000;

/** what the live view uses of the store's cluster */
export type LiveCluster = Pick<Cluster, 'node' | 'name' | 'nodes' | 'publishView'>;

/** What a node publishes of itself: its part of MonitorSnapshot (capped by LiveView). */
export type PublishedView = Pick<MonitorSnapshot, 'sessions' | 'transfers'>;

/** the last read of the nodes, and why it is not a fresh one (if so) */
export interface NodesRead {
  nodes: NodeView[] | undefined;
  error?: string;
}

export class PeerNodes {
  private last: NodeView[] | undefined;
  private lastAt: number | undefined;
  private failure: string | undefined;
  private polledAt = -Infinity;
  private pending: Promise<void> | undefined;

  constructor(
    private readonly cluster: Pick<Cluster, 'nodes'>,
    private readonly now: () => number,
    private readonly pollMs = NODES_POLL_MS,
    private readonly waitMs = NODES_WAIT_MS,
  ) {}

  async read(): Promise<NodesRead> {
    const now = this.now();
    if (!this.pending && (now - this.polledAt >= this.pollMs || now < this.polledAt)) {
      this.polledAt = now;
      const poll = this.poll();
      this.pending = poll;
      void poll.finally(() => {
        if (this.pending === poll) this.pending = undefined;
      });
    }
    const pending = this.pending;
    if (pending && !(await settlesWithin(pending, this.waitMs))) {
      return { nodes: this.last, error: this.note('they take longer than a second to answer') };
    }
    return this.failure === undefined
      ? { nodes: this.last }
      : { nodes: this.last, error: this.note(this.failure) };
  }

  private async poll(): Promise<void> {
    try {
      this.last = await this.cluster.nodes();
      this.lastAt = this.now();
      this.failure = undefined;
    } catch (err) {
      this.failure = (err as Error).message;
    }
  }

  private note(why: string): string {
    const as = this.lastAt === undefined ? '' : `; shown as of ${iso(this.lastAt)}`;
    return `could not read the other nodes: ${why}${as}`;
  }
}

/** true when `p` settles within `ms` (it never rejects: poll() catches) */
async function settlesWithin(p: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([p.then(() => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * This node's sessions and transfers with those the other live nodes published, each
 * named by its node, and the list of nodes (this one first). A dead node's sessions are
 * left out: its connections went with it.
 */
export function mergePeers(
  own: PublishedView,
  read: NodesRead,
  self: Pick<Cluster, 'node' | 'name'>,
  now: number,
): Pick<MonitorSnapshot, 'sessions' | 'transfers' | 'nodes' | 'nodesError'> {
  const sessions = { ...own.sessions, byProtocol: { ...own.sessions.byProtocol } };
  const lists: LiveSession[][] = [own.sessions.list];
  const transfers = [...own.transfers];
  const moving = new Set(transfers.map((t) => t.address));
  const selfRow = read.nodes?.find((n) => n.node === self.node);
  const nodes: NodeSummary[] = [
    {
      name: self.name,
      self: true,
      alive: true,
      sessions: own.sessions.total,
      transfers: own.transfers.length,
      seenAt: selfRow?.seenAt ?? iso(now),
    },
  ];
  for (const n of read.nodes ?? []) {
    if (n.node === self.node) continue;
    const view = n.alive ? readView(n.view) : undefined;
    nodes.push({
      name: n.name,
      self: false,
      alive: n.alive,
      sessions: view?.sessions.total ?? 0,
      transfers: view?.transfers.length ?? 0,
      seenAt: n.seenAt,
    });
    if (!view) continue;
    sessions.total += view.sessions.total;
    for (const p of PROTOCOLS) sessions.byProtocol[p] += view.sessions.byProtocol[p];
    lists.push(view.sessions.list.map((s) => ({ ...s, node: n.name })));
    // a move that just ended here may still be in the other's last view: show it once
    for (const t of view.transfers) {
      if (moving.has(t.address)) continue;
      moving.add(t.address);
      transfers.push({ ...t, node: n.name });
    }
  }
  sessions.list =
    lists.length === 1 ? own.sessions.list : newestFirst(lists.flat()).slice(0, SNAPSHOT_SESSIONS);
  return { sessions, transfers, nodes, ...(read.error ? { nodesError: read.error } : {}) };
}

const PROTOCOLS: readonly SessionProtocol[] = ['imap', 'pop3', 'smtp'];

function newestFirst(list: LiveSession[]): LiveSession[] {
  // ISO times of one format: their order is the strings' order
  return list.sort((a, b) => (a.openedAt < b.openedAt ? 1 : a.openedAt > b.openedAt ? -1 : 0));
}

/**
 * Another node's published view, as stored in the database: read defensively (a node of
 * another version may publish another shape), keeping only the entries that look right.
 */
export function readView(raw: unknown): PublishedView | undefined {
  if (!isObject(raw) || !isObject(raw.sessions) || !Array.isArray(raw.transfers)) return;
  const s = raw.sessions;
  if (!Array.isArray(s.list)) return;
  const by = isObject(s.byProtocol) ? s.byProtocol : {};
  const list = s.list.filter(
    (e): e is LiveSession =>
      isObject(e) &&
      typeof e.id === 'string' &&
      typeof e.openedAt === 'string' &&
      typeof e.client === 'string',
  );
  return {
    sessions: {
      total: Math.max(count(s.total), list.length),
      byProtocol: { imap: count(by.imap), pop3: count(by.pop3), smtp: count(by.smtp) },
      list,
    },
    transfers: raw.transfers.filter(
      (e): e is LiveTransfer =>
        isObject(e) && typeof e.address === 'string' && typeof e.startedAt === 'string',
    ),
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function count(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.floor(v) : 0;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
