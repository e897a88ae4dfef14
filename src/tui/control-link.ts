/**
 * The MonitorLink over the control socket: connect, `watch`, pass the snapshots on, and
 * when the gateway goes away (or is not running yet) say why and try again, waiting
 * longer each time up to a ceiling, until it answers. This is the one place where the
 * monitor touches the control client; `connect` is passed in, so tests can hand it a
 * stand-in that fails on cue.
 */
import type { ChangeResult } from '../core/accounts/change.js';
import type { Hello, MonitorSnapshot } from '../core/control/protocol.js';
import type { LinkListener, LinkStatus, MonitorLink, TransferOutcome } from './link.js';

/** the part of ControlClient (core/control/client.ts) the monitor uses */
export interface ControlConnection {
  readonly hello: Hello;
  call(method: 'transfer.start', params: { address: string }): Promise<ChangeResult>;
  watch(intervalMs: number, onSnapshot: (s: MonitorSnapshot) => void): Promise<MonitorSnapshot>;
  close(): void;
  once(event: 'close', listener: (err?: Error) => void): unknown;
}

export type ConnectControl = (
  socketPath: string,
  opts?: { timeoutMs?: number },
) => Promise<ControlConnection>;

export interface ControlLinkOptions {
  socketPath: string;
  connect: ConnectControl;
  /** asked of the gateway; it may clamp it */
  intervalMs: number;
  /** the first wait after a failure, doubled each time up to maxRetryMs */
  retryMs?: number;
  maxRetryMs?: number;
  /** connect + hello, and each call */
  timeoutMs?: number;
  now?: () => number;
}

const RETRY_MS = 1000;
const MAX_RETRY_MS = 15_000;
const TIMEOUT_MS = 5000;

/** a short reason for the status line; the client's errors already read well */
export function describeLinkError(err: unknown): string {
  const code = (err as { code?: unknown } | undefined)?.code;
  if (code === 'ENOPROXY') return 'autoport proxy is not running';
  if (err instanceof Error && err.message !== '') return err.message;
  return String(err);
}

class ControlLink implements MonitorLink {
  readonly target: string;
  private readonly listeners = new Set<LinkListener>();
  private status: LinkStatus = { state: 'connecting' };
  private last: MonitorSnapshot | undefined;
  private conn: ControlConnection | undefined;
  private timer: NodeJS.Timeout | undefined;
  private retryMs: number;
  private closed = false;

  constructor(private readonly opts: ControlLinkOptions) {
    this.target = opts.socketPath;
    this.retryMs = opts.retryMs ?? RETRY_MS;
  }

  subscribe(listener: LinkListener): () => void {
    this.listeners.add(listener);
    listener.status(this.status);
    if (this.last) listener.snapshot(this.last);
    return () => {
      this.listeners.delete(listener);
    };
  }

  async startTransfer(address: string): Promise<TransferOutcome> {
    const conn = this.conn;
    if (!conn || this.status.state !== 'connected')
      return {
        ok: false,
        address,
        message: 'not connected to the gateway',
        hint: 'wait until the monitor has reconnected, or run `autoport accounts retry`',
      };
    try {
      const result = await conn.call('transfer.start', { address });
      return { ok: true, address, message: result.message };
    } catch (err) {
      const hint = (err as { hint?: unknown }).hint;
      return {
        ok: false,
        address,
        message: describeLinkError(err),
        ...(typeof hint === 'string' ? { hint } : {}),
      };
    }
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const conn = this.conn;
    this.conn = undefined;
    conn?.close();
    this.listeners.clear();
  }

  async attempt(lastError?: string): Promise<void> {
    this.timer = undefined;
    if (this.closed) return;
    this.setStatus(
      lastError === undefined ? { state: 'connecting' } : { state: 'connecting', lastError },
    );
    let conn: ControlConnection;
    try {
      conn = await this.opts.connect(this.opts.socketPath, {
        timeoutMs: this.opts.timeoutMs ?? TIMEOUT_MS,
      });
    } catch (err) {
      this.lost(describeLinkError(err));
      return;
    }
    if (this.closed) {
      conn.close();
      return;
    }
    this.conn = conn;
    conn.once('close', (err) => {
      if (this.conn !== conn) return;
      this.conn = undefined;
      this.lost(err ? describeLinkError(err) : 'the gateway closed the connection');
    });
    try {
      const first = await conn.watch(this.opts.intervalMs, (s) => {
        if (this.conn === conn) this.publish(s);
      });
      if (this.conn !== conn) return;
      this.retryMs = this.opts.retryMs ?? RETRY_MS;
      this.setStatus({ state: 'connected', hello: conn.hello });
      this.publish(first);
    } catch (err) {
      if (this.conn !== conn) return;
      this.conn = undefined;
      conn.close();
      this.lost(describeLinkError(err));
    }
  }

  private lost(reason: string): void {
    if (this.closed) return;
    const wait = this.retryMs;
    this.retryMs = Math.min(wait * 2, this.opts.maxRetryMs ?? MAX_RETRY_MS);
    const now = this.opts.now ?? Date.now;
    this.setStatus({ state: 'lost', reason, retryAt: now() + wait });
    this.timer = setTimeout(() => void this.attempt(reason), wait);
  }

  private setStatus(status: LinkStatus): void {
    this.status = status;
    for (const l of this.listeners) l.status(status);
  }

  private publish(snapshot: MonitorSnapshot): void {
    this.last = snapshot;
    for (const l of this.listeners) l.snapshot(snapshot);
  }
}

/** a link that starts connecting at once and keeps at it until close() */
export function createControlLink(opts: ControlLinkOptions): MonitorLink {
  const link = new ControlLink(opts);
  void link.attempt();
  return link;
}
