/**
 * What the monitor needs from a running gateway, and nothing more: where it is, how the
 * connection stands, the snapshots, and one action. The screen depends on this interface
 * only, so tests drive it with a fake and the control-socket details stay in
 * control-link.ts.
 */
import type { Hello, MonitorSnapshot } from '../core/control/protocol.js';

export type LinkStatus =
  /** first attempt, or a new one after `lost` (then `lastError` says why the last one ended) */
  | { state: 'connecting'; lastError?: string }
  | { state: 'connected'; hello: Hello }
  /** the gateway went away or is not running; the next attempt is due at `retryAt` (epoch ms) */
  | { state: 'lost'; reason: string; retryAt: number };

/** what became of `startTransfer`: the gateway's answer, or an error with what to try */
export type TransferOutcome =
  | { ok: true; address: string; message: string }
  | { ok: false; address: string; message: string; hint?: string };

export interface LinkListener {
  status(status: LinkStatus): void;
  snapshot(snapshot: MonitorSnapshot): void;
}

export interface MonitorLink {
  /** where the gateway is expected (the control socket), for messages */
  readonly target: string;
  /**
   * Receive status changes and snapshots. The current status, and the last snapshot if
   * there is one, are delivered at once. Returns the way to unsubscribe.
   */
  subscribe(listener: LinkListener): () => void;
  /** move this account now (retry a failed one, put a captured one first in line) */
  startTransfer(address: string): Promise<TransferOutcome>;
  close(): void;
}
