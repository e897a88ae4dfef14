/**
 * SMTP listeners behind a load balancer: the PROXY protocol header is read by the
 * gateway's own gate (proxy-gate.ts, shared with IMAP/POP3) in place of smtp-server's
 * `useProxy`, which trusts every peer and knows only v1.
 */
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import type { SMTPServer } from 'smtp-server';
import type { GateResult, Peer, ProxyGate } from '../listen/proxy-gate.js';

/** smtp-server's hooks between TCP accept and its session (smtp-server 3.x, checked here) */
interface ProxyHooks {
  _expectsProxyHeader(socket: Socket): boolean;
  _handleProxy(
    socket: Socket,
    cb: (
      err: Error | null,
      opts?: { id: string; remoteAddress: string; remotePort: number },
    ) => void,
  ): void;
}

/**
 * The header is read by `gate` before smtp-server's TLS handshake (465) or greeting; the
 * session it then starts carries the header's client. `accepted` takes the connection's
 * slot (465) once the client is known; false refuses it.
 */
export function readProxyFirst(
  server: SMTPServer,
  gate: ProxyGate,
  accepted: (raw: Socket, peer: Peer) => boolean,
  refused: (r: Extract<GateResult, { ok: false }>) => void,
): void {
  const hooks = server as unknown as ProxyHooks;
  if (typeof hooks._handleProxy !== 'function' || typeof hooks._expectsProxyHeader !== 'function')
    throw new Error('smtp-server has no _handleProxy hook: the PROXY protocol cannot be read');
  // smtp-server guards a socket it expects a header from (its pending-socket cap and timeout)
  hooks._expectsProxyHeader = () => true;
  hooks._handleProxy = (socket, cb) => {
    socket.on('error', () => undefined);
    void gate.admit(socket).then((r) => {
      if (!r.ok) {
        socket.destroy();
        refused(r);
        return cb(new Error(`PROXY: ${r.detail}`));
      }
      if (!accepted(socket, r.peer)) return cb(new Error('connection limit reached'));
      cb(null, {
        id: randomBytes(10).toString('hex'),
        remoteAddress: r.peer.address,
        remotePort: r.peer.port,
      });
    });
  };
}
