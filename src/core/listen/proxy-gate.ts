/**
 * The door of a PROXY protocol listener: who may connect, how many may wait for their
 * header, and the client the rest of the gateway sees. Shared by the IMAP/POP3 listeners
 * and the SMTP ones, so one proxy address is bounded across all of them.
 *
 * Connection-limit slots are keyed by the real client, so they are taken after the header;
 * until then a connection counts against `maxPending` of the proxy it comes from.
 */
import type { Socket } from 'node:net';
import type { ConnectionLimits } from '../limits.js';
import { AddressBlocks, clientKey, unmapIpv4 } from '../net-address.js';
import { readProxyHeader } from './proxy-protocol.js';

/** Both ends of a client's connection, as the gateway logs and forwards them. */
export interface Peer {
  address: string;
  port: number;
  localAddress: string;
  localPort: number;
}

export function socketPeer(socket: Socket): Peer {
  return {
    address: unmapIpv4(socket.remoteAddress),
    port: socket.remotePort ?? 0,
    localAddress: unmapIpv4(socket.localAddress),
    localPort: socket.localPort ?? 0,
  };
}

export type GateResult =
  | { ok: true; peer: Peer; proxy: string }
  | { ok: false; reason: 'untrusted' | 'busy' | 'bad-header'; detail: string; proxy: string };

export class ProxyGate {
  private trusted = AddressBlocks.none;
  private readonly pending = new Map<string, number>();

  constructor(
    trusted: readonly string[],
    private readonly limits: () => Pick<
      ConnectionLimits,
      'proxyHeaderMs' | 'maxProxyHeaderBytes' | 'maxProxyPending'
    >,
  ) {
    this.setTrusted(trusted);
  }

  /** A new trusted list (config reload); throws, keeping the old one, on a bad entry. */
  setTrusted(trusted: readonly string[]): void {
    this.trusted = AddressBlocks.parse('proxyProtocol.trusted', trusted);
  }

  isTrusted(address: string | undefined): boolean {
    return this.trusted.has(address);
  }

  /**
   * Read the header of a new connection. A refused connection is left to the caller to
   * close (nothing may be said to it: it is not known to speak our protocol yet).
   */
  async admit(socket: Socket): Promise<GateResult> {
    const own = socketPeer(socket);
    const proxy = own.address;
    if (!this.isTrusted(proxy))
      return { ok: false, reason: 'untrusted', detail: 'not a trusted proxy', proxy };
    const limits = this.limits();
    const key = clientKey(proxy);
    const waiting = this.pending.get(key) ?? 0;
    if (waiting >= limits.maxProxyPending)
      return { ok: false, reason: 'busy', detail: 'too many connections waiting', proxy };
    this.pending.set(key, waiting + 1);
    try {
      const r = await readProxyHeader(socket, {
        timeoutMs: limits.proxyHeaderMs,
        maxBytes: limits.maxProxyHeaderBytes,
      });
      if (!r.ok) return { ok: false, reason: 'bad-header', detail: r.reason, proxy };
      const { client, server } = r.header;
      // LOCAL / UNKNOWN: the proxy's own check, the connection is what it looks like.
      if (!client) return { ok: true, peer: own, proxy };
      return {
        ok: true,
        proxy,
        peer: {
          address: client.address,
          port: client.port,
          localAddress: server?.address ?? own.localAddress,
          localPort: server?.port ?? own.localPort,
        },
      };
    } finally {
      const n = (this.pending.get(key) ?? 1) - 1;
      if (n > 0) this.pending.set(key, n);
      else this.pending.delete(key);
    }
  }

  /** connections waiting for a header now (tests, metrics) */
  waiting(): number {
    let n = 0;
    for (const v of this.pending.values()) n += v;
    return n;
  }
}
