/**
 * The gateway's live view for `autoport monitor`: folds the event bus into the
 * MonitorSnapshot the control socket pushes. Memory stays bounded whatever the load: open
 * sessions live until their close event, transfers while they run, and everything
 * finished (closed sessions, errors, minutes) is a short capped list.
 *
 * With several gateway nodes on one PostgreSQL, each node's bus carries only its own
 * sessions: the view publishes a capped summary of them with the node's heartbeat and
 * merges those of the other live nodes into each snapshot (peers.ts).
 *
 * Every time in the view comes from deps.now at the moment an event arrives (events are
 * emitted synchronously, so this is the event's own time in production), which lets tests
 * drive the rate, the minute strip and the account cache with a fake clock.
 */
import type { EventBus, GatewayEvent, SessionProtocol, TransferProgress } from '../bus.js';
import type { SessionRegistry } from '../sessions/registry.js';
import { countAccounts } from '../state/account-counts.js';
import { DEFAULT_CLUSTER_TIMING, type StateStore } from '../state/types.js';
import { mergePeers, PeerNodes, type LiveCluster, type PublishedView } from './peers.js';
import {
  SNAPSHOT_CLOSED,
  SNAPSHOT_ERRORS,
  SNAPSHOT_MINUTES,
  SNAPSHOT_SESSIONS,
  type ClosedSession,
  type Hello,
  type LiveSession,
  type LiveTransfer,
  type MinuteCounts,
  type MonitorSnapshot,
  type RecentError,
} from './protocol.js';

/** a transfer's rate is measured over this much recent progress */
export const RATE_WINDOW_MS = 8_000;
/** at most this many progress samples per transfer, however fast events arrive */
const MAX_RATE_SAMPLES = 64;
const MINUTE_MS = 60_000;

export interface LiveViewDeps {
  bus: EventBus;
  /** accounts by state; queue = captured accounts waiting */
  store: Pick<StateStore, 'counts'>;
  /** live byte counters of spliced sessions */
  sessions?: SessionRegistry;
  /** the nodes sharing the store (store.cluster): this node's name, the others' views */
  cluster: LiveCluster;
  /** how often this node's view is handed to the cluster (its heartbeat: more is wasted) */
  publishMs?: number;
  /** tests: how often and how long a snapshot reads the other nodes (peers.ts) */
  nodesPollMs?: number;
  nodesWaitMs?: number;
  /** gateway identity for snapshot.gateway */
  hello: () => Hello;
  now?: () => number;
}

interface OpenSession {
  view: LiveSession;
  /** an SMTP AUTH user names the session; recipients only name an unauthenticated one */
  authenticated: boolean;
}

interface Sample {
  t: number;
  /** bytes copied in the whole run at time t */
  bytes: number;
}

interface RunningTransfer {
  view: LiveTransfer;
  samples: Sample[];
}

export class LiveView {
  private readonly now: () => number;
  /** insertion order = open order, so the newest sessions are at the end */
  private readonly open = new Map<string, OpenSession>();
  private readonly byProtocol: Record<SessionProtocol, number> = { imap: 0, pop3: 0, smtp: 0 };
  private readonly closed: ClosedSession[] = [];
  private readonly transfers = new Map<string, RunningTransfer>();
  /** a ring of SNAPSHOT_MINUTES slots, slot = minute number mod SNAPSHOT_MINUTES */
  private readonly minutes: Array<{ index: number; counts: MinuteCounts } | undefined> = [];
  private readonly errors: RecentError[] = [];
  private readonly unsubscribe: () => void;
  private readonly peers: PeerNodes;
  private readonly publisher: NodeJS.Timeout;

  constructor(private readonly deps: LiveViewDeps) {
    this.now = deps.now ?? Date.now;
    this.unsubscribe = deps.bus.onAny((e) => this.apply(e));
    this.peers = new PeerNodes(deps.cluster, this.now, deps.nodesPollMs, deps.nodesWaitMs);
    this.publisher = setInterval(
      () => this.publish(),
      deps.publishMs ?? DEFAULT_CLUSTER_TIMING.heartbeatMs,
    );
    this.publisher.unref();
  }

  close(): void {
    clearInterval(this.publisher);
    this.unsubscribe();
  }

  /** hand this node's capped view to the cluster, which stores it with the next heartbeat */
  publish(): void {
    this.deps.cluster.publishView(this.ownView(this.now()));
  }

  async snapshot(): Promise<MonitorSnapshot> {
    const now = this.now();
    const [counts, nodes] = await Promise.all([
      countAccounts(this.deps.store, now),
      this.peers.read(),
    ]);
    const merged = mergePeers(this.ownView(now), nodes, this.deps.cluster, now);
    return {
      at: iso(now),
      gateway: this.deps.hello(),
      accounts: { ...counts.byState },
      queue: counts.queue,
      sessions: merged.sessions,
      closed: this.closed.map((c) => ({ ...c })),
      transfers: merged.transfers,
      minutes: this.minuteStrip(now),
      errors: this.errors.map((e) => ({ ...e })),
      nodes: merged.nodes,
      ...(merged.nodesError === undefined ? {} : { nodesError: merged.nodesError }),
    };
  }

  /** this node's open sessions (the newest SNAPSHOT_SESSIONS) and running transfers */
  private ownView(now: number): PublishedView {
    return {
      sessions: {
        total: this.open.size,
        byProtocol: { ...this.byProtocol },
        list: this.newestSessions(),
      },
      transfers: [...this.transfers.values()].map((t) => this.transferView(t, now)),
    };
  }

  private apply(e: GatewayEvent): void {
    const now = this.now();
    switch (e.type) {
      case 'session.opened': {
        if (this.open.has(e.session)) return;
        this.open.set(e.session, {
          view: {
            id: e.session,
            node: this.deps.cluster.name,
            protocol: e.protocol,
            listener: e.listener,
            client: e.client.address,
            tls: e.tls,
            openedAt: iso(now),
            bytesIn: 0,
            bytesOut: 0,
          },
          authenticated: false,
        });
        this.byProtocol[e.protocol]++;
        return;
      }
      case 'session.tls': {
        const s = this.open.get(e.session);
        if (s) s.view.tls = true;
        return;
      }
      case 'session.login': {
        this.minute(now)[e.result === 'ok' ? 'loginsOk' : 'loginsRefused']++;
        if (e.result === 'refused') {
          const why = [e.outcome, e.detail].filter(Boolean).join(': ');
          this.error(now, 'login', e.user, why || 'login refused');
          return;
        }
        const s = this.open.get(e.session);
        if (s) {
          s.view.user = e.user;
          s.authenticated = true;
        }
        return;
      }
      case 'session.route': {
        const s = this.open.get(e.session);
        if (!s) return;
        if (e.target !== 'refuse') s.view.route = e.target;
        // Port 25 carries no login: the session is named by its last recipient.
        if (!s.authenticated) s.view.user = e.user;
        return;
      }
      case 'session.closed':
        return this.sessionClosed(e, now);
      case 'smtp.message': {
        // Every message handed to a backend counts, refused or not: the strip shows where
        // mail goes; refusals also show up as errors.
        const m = this.minute(now);
        if (e.route === 'source') m.smtpToSource++;
        else m.smtpToDestination++;
        if (!e.accepted) {
          const s = this.open.get(e.session)?.view;
          const subject = s?.user ?? s?.client ?? e.session;
          this.error(now, 'smtp', subject, `the ${e.route} refused a message: ${e.code}`);
        }
        return;
      }
      case 'transfer.started':
        return this.transferStarted(e, now);
      case 'transfer.progress': {
        const t = this.transfers.get(e.address);
        if (t) progress(t, e, now);
        return;
      }
      case 'transfer.switching': {
        const t = this.transfers.get(e.address);
        if (t) t.view.step = 'switching';
        return;
      }
      case 'transfer.finished': {
        this.transfers.delete(e.address);
        // an abort by the gateway itself (shutdown) resumes later: not an error
        if (!e.ok && !e.aborted)
          this.error(now, 'transfer', e.address, e.detail ?? 'transfer failed');
        return;
      }
      case 'transfer.swept':
        if (e.error) this.error(now, 'transfer', e.address, `late-mail sweep: ${e.error}`);
        return;
      case 'account.captured':
        return;
    }
  }

  private sessionClosed(e: Extract<GatewayEvent, { type: 'session.closed' }>, now: number): void {
    const s = this.open.get(e.session);
    if (s) {
      this.open.delete(e.session);
      this.byProtocol[s.view.protocol]--;
      this.closed.unshift({
        ...s.view,
        user: s.view.user ?? e.user,
        bytesIn: e.bytesIn,
        bytesOut: e.bytesOut,
        closedAt: iso(now),
        reason: e.reason,
        durationMs: e.durationMs,
      });
      if (this.closed.length > SNAPSHOT_CLOSED) this.closed.length = SNAPSHOT_CLOSED;
    }
    if (e.reason === 'protocol-error' || e.reason === 'error') {
      const subject = s?.view.client ?? e.user ?? e.session;
      this.error(now, 'session', subject, e.detail ? `${e.reason}: ${e.detail}` : e.reason);
    }
  }

  private transferStarted(
    e: Extract<GatewayEvent, { type: 'transfer.started' }>,
    now: number,
  ): void {
    this.transfers.set(e.address, {
      view: {
        address: e.address,
        node: this.deps.cluster.name,
        attempt: e.attempt,
        startedAt: iso(now),
        step: 'pre-copying',
        folderCopied: 0,
        folderToCopy: 0,
        folderBytes: 0,
        folderToCopyBytes: 0,
        foldersDone: 0,
        messages: 0,
        bytes: 0,
        bytesPerSecond: 0,
      },
      samples: [{ t: now, bytes: 0 }],
    });
  }

  private error(now: number, kind: RecentError['kind'], subject: string, message: string): void {
    this.errors.unshift({ at: iso(now), kind, subject, message });
    if (this.errors.length > SNAPSHOT_ERRORS) this.errors.length = SNAPSHOT_ERRORS;
  }

  /** the current minute's counts; its ring slot is reset when it last held an older minute */
  private minute(now: number): MinuteCounts {
    const index = Math.floor(now / MINUTE_MS);
    const slot = index % SNAPSHOT_MINUTES;
    let m = this.minutes[slot];
    if (m?.index !== index) this.minutes[slot] = m = { index, counts: emptyMinute(index) };
    return m.counts;
  }

  private minuteStrip(now: number): MinuteCounts[] {
    const current = Math.floor(now / MINUTE_MS);
    const strip: MinuteCounts[] = [];
    for (let index = current - SNAPSHOT_MINUTES + 1; index <= current; index++) {
      const m = this.minutes[index % SNAPSHOT_MINUTES];
      strip.push(m?.index === index ? { ...m.counts } : emptyMinute(index));
    }
    return strip;
  }

  /** the newest SNAPSHOT_SESSIONS open sessions, newest first, with live byte counts */
  private newestSessions(): LiveSession[] {
    const skip = this.open.size - SNAPSHOT_SESSIONS;
    const list: LiveSession[] = [];
    let i = 0;
    for (const s of this.open.values()) {
      if (i++ < skip) continue;
      const bytes = this.deps.sessions?.bytes(s.view.id);
      list.push(bytes ? { ...s.view, ...bytes } : { ...s.view });
    }
    return list.reverse();
  }

  private transferView(t: RunningTransfer, now: number): LiveTransfer {
    prune(t.samples, now);
    const base = t.samples[0]!;
    const last = t.samples[t.samples.length - 1]!;
    const seconds = (now - base.t) / 1000;
    const rate = seconds > 0 ? (last.bytes - base.bytes) / seconds : 0;
    const view: LiveTransfer = { ...t.view, bytesPerSecond: Math.round(rate) };
    // the run so far (protocol.ts): finished folders plus the one being copied
    if (view.phase !== undefined && view.phase !== 'done') {
      view.messages += view.folderCopied;
      view.bytes += view.folderBytes;
    }
    const left = view.folderToCopyBytes - view.folderBytes;
    if (rate > 0 && view.phase === 'copy' && left >= 0) {
      view.folderEtaSeconds = Math.ceil(left / rate);
    }
    return view;
  }
}

/**
 * One progress event: the current folder's counters are the event's own; a 'done' event
 * adds the folder to the run's totals (messages, bytes, foldersDone) once.
 */
function progress(t: RunningTransfer, e: TransferProgress, now: number): void {
  const v = t.view;
  const repeatDone = e.phase === 'done' && v.phase === 'done' && v.folder === e.folder;
  v.folder = e.folder;
  v.phase = e.phase;
  v.folderCopied = e.copied;
  v.folderToCopy = e.toCopy;
  v.folderBytes = e.copiedBytes;
  v.folderToCopyBytes = e.toCopyBytes;
  if (e.phase === 'done' && !repeatDone) {
    v.foldersDone++;
    v.messages += e.copied;
    v.bytes += e.copiedBytes;
  }
  const copied = v.bytes + (e.phase === 'done' ? 0 : e.copiedBytes);
  t.samples.push({ t: now, bytes: copied });
  prune(t.samples, now);
}

/**
 * Keep the samples inside the window plus the last one before it, so the rate spans the
 * whole window and falls to zero when a transfer stalls instead of keeping its last pace.
 */
function prune(samples: Sample[], now: number): void {
  const cutoff = now - RATE_WINDOW_MS;
  let drop = 0;
  while (drop + 1 < samples.length && samples[drop + 1]!.t <= cutoff) drop++;
  drop = Math.max(drop, samples.length - MAX_RATE_SAMPLES);
  if (drop > 0) samples.splice(0, drop);
}

function emptyMinute(index: number): MinuteCounts {
  return {
    minute: iso(index * MINUTE_MS),
    smtpToSource: 0,
    smtpToDestination: 0,
    loginsOk: 0,
    loginsRefused: 0,
  };
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
