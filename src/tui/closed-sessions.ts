/**
 * Which closed sessions are new. Every snapshot carries the last few sessions to end
 * (newest first); the monitor prints each one once, above the live region. A session that
 * has left that list never comes back, so only the recently printed ids are remembered.
 */
import { SNAPSHOT_CLOSED, type ClosedSession } from '../core/control/protocol.js';

const REMEMBER = 4 * SNAPSHOT_CLOSED;

export class ClosedSessionLog {
  private readonly seen = new Set<string>();
  private readonly order: string[] = [];

  /** the sessions of `closed` (newest first) not taken before, oldest first */
  take(closed: readonly ClosedSession[]): ClosedSession[] {
    const fresh = closed.filter((s) => !this.seen.has(s.id)).reverse();
    for (const s of fresh) {
      this.seen.add(s.id);
      this.order.push(s.id);
    }
    while (this.order.length > REMEMBER) this.seen.delete(this.order.shift() as string);
    return fresh;
  }
}
