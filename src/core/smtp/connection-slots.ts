/**
 * The connection limiter's slots for one SMTP listener. Ports 25 and 587 take a slot when
 * smtp-server hands the connection to onConnect. Port 465 counts from TCP accept, so TLS
 * handshakes in progress are within the limits too: its slot waits here (by client and
 * port) for onConnect, and goes back when the raw socket closes, which smtp-server never
 * stops listening for on 465.
 */
import type { Socket } from 'node:net';
import type { SMTPServerSession } from 'smtp-server';
import type { ConnectionLimiter } from '../listen/connection-limiter.js';
import type { Peer } from '../listen/proxy-gate.js';
import type { Logger } from '../log/logger.js';
import { clientKey, unmapIpv4 } from '../net-address.js';
import type { SmtpListenerName } from './session.js';

export type Release = () => void;

export class ConnectionSlots {
  private readonly accepted = new Map<string, Release[]>();

  constructor(
    private readonly listener: SmtpListenerName,
    private readonly connections: ConnectionLimiter | undefined,
    private readonly logger: Logger,
  ) {}

  private static key(address: string, port: number): string {
    return `${clientKey(address)} ${port}`;
  }

  private take(key: string): Release | undefined {
    const list = this.accepted.get(key);
    const slot = list?.shift();
    if (list && list.length === 0) this.accepted.delete(key);
    return slot;
  }

  /** the slot of a connection smtp-server hands to onConnect; undefined: refused */
  admit(s: SMTPServerSession): Release | undefined {
    if (!this.connections) return () => undefined;
    const address = unmapIpv4(s.remoteAddress);
    if (this.listener === 'submissions') {
      const slot = this.take(ConnectionSlots.key(address, s.remotePort));
      if (slot) return slot;
    }
    return this.connections.acquire(address);
  }

  /** 465 at TCP accept: take a slot for the handshake to come, or close the socket */
  onAccept(raw: Socket, peer?: Peer): boolean {
    const address = peer?.address ?? unmapIpv4(raw.remoteAddress);
    const slot = this.connections?.acquire(address);
    if (!slot) {
      // Nothing can be said before the handshake; the limit is logged.
      this.logger.warn('connection refused: limit reached', {
        client: address,
        listener: this.listener,
      });
      raw.destroy();
      return false;
    }
    const key = ConnectionSlots.key(address, peer?.port ?? raw.remotePort ?? 0);
    this.accepted.set(key, [...(this.accepted.get(key) ?? []), slot]);
    raw.once('close', () => {
      slot();
      const list = this.accepted.get(key)?.filter((x) => x !== slot);
      if (list?.length) this.accepted.set(key, list);
      else this.accepted.delete(key);
    });
    return true;
  }
}
