/**
 * What the monitor tests share: snapshots built from a few facts, a MonitorLink the test
 * drives by hand, and waiting for a frame (ANSI stripped) that says what is expected.
 */
import { stripVTControlCharacters } from 'node:util';
import type {
  ClosedSession,
  Hello,
  LiveSession,
  LiveTransfer,
  MonitorSnapshot,
  NodeSummary,
  RecentError,
} from '../../src/core/control/protocol.js';
import type { LinkListener, LinkStatus, MonitorLink, TransferOutcome } from '../../src/tui/link.js';

export const T0 = Date.parse('2025-03-01T10:00:00.000Z');
export const iso = (msAfterT0: number) => new Date(T0 + msAfterT0).toISOString();

export const hello: Hello = {
  protocol: 1,
  version: '0.1.0',
  pid: 4242,
  startedAt: iso(-2 * 3600_000 - 5 * 60_000),
  configFile: '/etc/autoport/autoport.yaml',
  listeners: { imap: { host: '127.0.0.1', port: 143 } },
};

export function session(id: string, over: Partial<LiveSession> = {}): LiveSession {
  return {
    id,
    node: 'gw1',
    protocol: 'imap',
    listener: 'imap',
    client: '192.0.2.10',
    tls: true,
    openedAt: iso(-192_000),
    bytesIn: 2048,
    bytesOut: 3 * 1024 * 1024,
    ...over,
  };
}

export function closedSession(id: string, over: Partial<ClosedSession> = {}): ClosedSession {
  return {
    ...session(id),
    user: `${id}@example.org`,
    route: 'destination',
    closedAt: iso(-1000),
    reason: 'client-logout',
    durationMs: 75_000,
    ...over,
  };
}

export function transfer(address: string, over: Partial<LiveTransfer> = {}): LiveTransfer {
  return {
    address,
    node: 'gw1',
    attempt: 1,
    startedAt: iso(-60_000),
    folder: 'INBOX',
    phase: 'copy',
    folderCopied: 12,
    folderToCopy: 40,
    folderBytes: 12 * 50_000,
    folderToCopyBytes: 40 * 50_000,
    foldersDone: 2,
    messages: 112,
    bytes: 5_000_000,
    bytesPerSecond: 1.5 * 1024 * 1024,
    folderEtaSeconds: 32,
    ...over,
  };
}

/** a gateway node as the snapshot lists it; 'gw1' is the one the monitor is attached to */
export function node(name: string, over: Partial<NodeSummary> = {}): NodeSummary {
  return {
    name,
    self: name === 'gw1',
    alive: true,
    sessions: 0,
    transfers: 0,
    seenAt: iso(-1000),
    ...over,
  };
}

export function snapshot(over: Partial<MonitorSnapshot> = {}): MonitorSnapshot {
  const list = over.sessions?.list ?? [];
  return {
    at: iso(0),
    gateway: hello,
    accounts: {
      unknown: 300,
      captured: 4,
      transferring: 2,
      migrated: 120,
      failed: 1,
      excluded: 2,
    },
    queue: 4,
    sessions: { total: list.length, byProtocol: { imap: list.length, pop3: 0, smtp: 0 }, list },
    closed: [],
    transfers: [],
    minutes: [
      {
        minute: iso(-120_000),
        smtpToSource: 2,
        smtpToDestination: 10,
        loginsOk: 5,
        loginsRefused: 0,
      },
      {
        minute: iso(-60_000),
        smtpToSource: 4,
        smtpToDestination: 20,
        loginsOk: 7,
        loginsRefused: 1,
      },
      { minute: iso(0), smtpToSource: 8, smtpToDestination: 40, loginsOk: 3, loginsRefused: 2 },
    ],
    errors: [] as RecentError[],
    nodes: [node('gw1', { sessions: list.length })],
    ...over,
  };
}

export class FakeLink implements MonitorLink {
  readonly target = '/run/autoport/autoport.sock';
  readonly started: string[] = [];
  closed = false;
  outcome: (address: string) => TransferOutcome = (address) => ({
    ok: true,
    address,
    message: 'queued first in line',
  });
  private readonly listeners = new Set<LinkListener>();
  private current: LinkStatus = { state: 'connecting' };
  private last: MonitorSnapshot | undefined;

  subscribe(listener: LinkListener): () => void {
    this.listeners.add(listener);
    listener.status(this.current);
    if (this.last) listener.snapshot(this.last);
    return () => void this.listeners.delete(listener);
  }

  setStatus(status: LinkStatus): void {
    this.current = status;
    for (const l of this.listeners) l.status(status);
  }

  push(s: MonitorSnapshot): void {
    this.last = s;
    for (const l of this.listeners) l.snapshot(s);
  }

  /** connected, and this snapshot on screen */
  connect(s: MonitorSnapshot = snapshot()): void {
    this.setStatus({ state: 'connected', hello });
    this.push(s);
  }

  async startTransfer(address: string): Promise<TransferOutcome> {
    this.started.push(address);
    return this.outcome(address);
  }

  close(): void {
    this.closed = true;
  }
}

export const plain = (frame: string | undefined) => stripVTControlCharacters(frame ?? '');

/** wait until the last frame passes `check`; fail with that frame if it never does */
export async function waitForFrame(
  lastFrame: () => string | undefined,
  check: (frame: string) => boolean,
  what: string,
): Promise<string> {
  const deadline = Date.now() + 3000;
  for (;;) {
    const frame = plain(lastFrame());
    if (check(frame)) return frame;
    if (Date.now() > deadline) throw new Error(`no frame ${what}; last frame:\n${frame}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export const count = (text: string, part: string) => text.split(part).length - 1;
