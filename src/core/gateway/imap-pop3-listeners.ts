/**
 * The IMAP and POP3 listeners (imap, imaps, pop3, pop3s): what happens to a connection
 * between accept and its protocol's session, i.e. the connection limits, the refusal a
 * client can still read, the PROXY header, and the hand-over to imap/ or pop3/.
 */
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import type { EventBus } from '../bus.js';
import { isLoopbackHost } from '../config/endpoint.js';
import type { Config } from '../config/types.js';
import { startImapSession } from '../imap/session.js';
import type { GatewayLimits } from '../limits.js';
import type { ConnectionLimiter } from '../listen/connection-limiter.js';
import {
  startListener,
  type AcceptHandlers,
  type ListenerSpec,
  type RunningListener,
  type TlsProvider,
} from '../listen/listeners.js';
import type { ProxyGate } from '../listen/proxy-gate.js';
import type { Logger } from '../log/logger.js';
import { unmapIpv4 } from '../net-address.js';
import { startPop3Session } from '../pop3/session.js';
import { imapBye, pop3Reply } from '../replies.js';
import type { FrontendDeps, ListenerInfo, SessionInfo } from '../sessions/types.js';

export type PlaintextPolicy = 'always' | 'loopback' | 'never';

const LISTENER_KINDS: Array<{
  name: keyof Config['listen'];
  protocol: 'imap' | 'pop3';
  implicitTls: boolean;
}> = [
  { name: 'imap', protocol: 'imap', implicitTls: false },
  { name: 'imaps', protocol: 'imap', implicitTls: true },
  { name: 'pop3', protocol: 'pop3', implicitTls: false },
  { name: 'pop3s', protocol: 'pop3', implicitTls: true },
];

export function sessionId(): string {
  return randomBytes(6).toString('base64url');
}

export interface ImapPop3Wiring {
  config: Config;
  limits: GatewayLimits;
  tls: TlsProvider;
  connections: ConnectionLimiter;
  frontendDeps: FrontendDeps;
  plaintext: PlaintextPolicy;
  bus: EventBus;
  logger: Logger;
  stopping(): boolean;
  /** the gate that reads PROXY headers, when the config names listeners behind one */
  proxyGate: ProxyGate | undefined;
}

function listenerInfo(w: ImapPop3Wiring, spec: ListenerSpec): ListenerInfo {
  return {
    name: spec.name,
    protocol: spec.protocol,
    implicitTls: spec.implicitTls,
    secureContext: () => w.tls.context(),
    plaintextLogin: (client) =>
      w.plaintext === 'always' || (w.plaintext === 'loopback' && isLoopbackHost(client.address)),
  };
}

function refuse(
  socket: Socket,
  spec: ListenerSpec,
  outcome: 'too-many-connections' | 'shutting-down',
): undefined {
  // Before an implicit-TLS handshake there is no way to say why.
  if (spec.implicitTls) return void socket.destroy();
  socket.end(spec.protocol === 'imap' ? imapBye(outcome) : pop3Reply(outcome));
  setTimeout(() => socket.destroy(), 1000).unref();
}

function acceptHandlers(w: ImapPop3Wiring): AcceptHandlers {
  const { logger, bus } = w;
  return {
    admit: (socket, spec, peer) => {
      if (w.stopping()) return refuse(socket, spec, 'shutting-down');
      const address = peer.address;
      const slot = w.connections.acquire(address);
      if (slot) return slot;
      logger.warn('connection refused: limit reached', { client: address, listener: spec.name });
      return refuse(socket, spec, 'too-many-connections');
    },
    ready: (socket, spec, slot, peer) => {
      socket.setNoDelay(true);
      const id = sessionId();
      const info: SessionInfo = {
        id,
        listener: listenerInfo(w, spec),
        client: { ...peer, session: id },
      };
      if (spec.protocol === 'imap') startImapSession(socket, info, w.frontendDeps, slot);
      else startPop3Session(socket, info, w.frontendDeps, slot);
    },
    proxyRefused: (spec, r) => {
      logger.warn('connection refused: no valid PROXY header from a trusted proxy', {
        listener: spec.name,
        proxy: r.proxy,
        reason: r.reason,
        detail: r.detail,
      });
      bus.emit({
        type: 'proxy.refused',
        at: new Date().toISOString(),
        listener: spec.name,
        reason: r.reason,
        proxy: r.proxy,
      });
    },
    fault: (err, spec, socket) => {
      const session = sessionId();
      logger.error('session fault at accept: connection closed', {
        session,
        listener: spec.name,
        client: unmapIpv4(socket.remoteAddress),
        err,
      });
      bus.emit({
        type: 'session.closed',
        at: new Date().toISOString(),
        session,
        protocol: spec.protocol,
        reason: 'error',
        bytesIn: 0,
        bytesOut: 0,
        durationMs: 0,
        detail: err instanceof Error ? err.message : String(err),
      });
    },
  };
}

/** Every IMAP/POP3 listener the config asks for; none stays open when one fails to start. */
export async function startImapPop3Listeners(w: ImapPop3Wiring): Promise<RunningListener[]> {
  const { config } = w;
  // Listeners behind HAProxy/nginx: the header's client replaces the socket's peer
  // everywhere (logs, brakes, limits, x-originating-ip and XCLIENT to backends).
  const behindProxy = (name: string): ProxyGate | undefined =>
    config.proxyProtocol?.listeners.some((l) => l === name) ? w.proxyGate : undefined;
  const accept = acceptHandlers(w);
  const running: RunningListener[] = [];
  try {
    for (const kind of LISTENER_KINDS) {
      const addr = config.listen[kind.name];
      if (!addr) continue;
      const spec: ListenerSpec = {
        name: kind.name,
        protocol: kind.protocol,
        host: addr.host,
        port: addr.port,
        implicitTls: kind.implicitTls,
        proxy: behindProxy(kind.name),
      };
      running.push(await startListener(spec, w.tls, accept, w.limits.connections.handshakeMs));
    }
  } catch (err) {
    await Promise.all(running.map((l) => l.close()));
    throw err;
  }
  return running;
}
