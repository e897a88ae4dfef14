/**
 * Listening sockets for the front-ends: plain ones (143, 110; STARTTLS/STLS offered when a
 * certificate is configured) and implicit-TLS ones (993, 995). Certificates come from a
 * TlsProvider so SIGHUP can swap them without closing a listener or a session.
 *
 * A connection is admitted (counted against the connection limits) at TCP accept, before
 * any TLS handshake: a client must not hold handshakes open outside the limits. The
 * handshake of an implicit-TLS connection then has a deadline of its own.
 *
 * Behind a load balancer (spec.proxy) the PROXY protocol header comes first, before the
 * handshake and the greeting: the slot is taken once it names the real client, and a
 * connection without a valid header from a trusted proxy is closed without a word.
 */
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { createSecureContext, TLSSocket, type SecureContext } from 'node:tls';
import { socketPeer, type GateResult, type Peer, type ProxyGate } from './proxy-gate.js';
import type { Release } from '../sessions/types.js';

export interface ListenerSpec {
  /** config key: imap, imaps, pop3, pop3s */
  name: string;
  protocol: 'imap' | 'pop3';
  host: string;
  port: number;
  implicitTls: boolean;
  /** PROXY protocol in front of this listener: the header is read first, through this gate */
  proxy?: ProxyGate;
}

export interface TlsMaterial {
  cert: string | Buffer;
  key: string | Buffer;
}

/**
 * The gateway's certificate, replaceable at run time: every handshake takes the context
 * current at its start, so a new certificate serves the next connection.
 */
export class TlsProvider {
  private ctx: SecureContext | undefined;

  constructor(material?: TlsMaterial) {
    if (material) this.set(material);
  }

  /** Throws (and keeps the old certificate) when the new one does not load. */
  set(material: TlsMaterial): void {
    this.ctx = createSecureContext({ ...material, minVersion: 'TLSv1.2' });
  }

  context(): SecureContext | undefined {
    return this.ctx;
  }
}

export interface RunningListener {
  spec: ListenerSpec;
  address: AddressInfo;
  /** stop accepting; open sessions are not touched */
  close(): Promise<void>;
}

/** What the gateway does with a connection; each step may throw without harm to others. */
export interface AcceptHandlers {
  /**
   * A TCP connection arrived: its connection-limit slot, or undefined when it is refused
   * (the handler has answered and closed it).
   */
  admit(socket: Socket, spec: ListenerSpec, peer: Peer): Release | undefined;
  /** The connection is ready (TLS is up on an implicit-TLS listener); it owns `slot` now. */
  ready(socket: Socket, spec: ListenerSpec, slot: Release, peer: Peer): void;
  /** a PROXY protocol listener closed a connection before its header named a client */
  proxyRefused?(spec: ListenerSpec, result: Extract<GateResult, { ok: false }>): void;
  /** admit or ready threw: the connection is closed and its slot released already */
  fault(err: unknown, spec: ListenerSpec, socket: Socket): void;
}

/** The server side of a TLS handshake on an accepted socket, within `timeoutMs`. */
function handshake(
  raw: Socket,
  ctx: SecureContext,
  timeoutMs: number,
): Promise<TLSSocket | undefined> {
  const secure = new TLSSocket(raw, { isServer: true, secureContext: ctx });
  return new Promise((resolve) => {
    const timer = setTimeout(() => secure.destroy(), timeoutMs);
    timer.unref?.();
    const fail = (): void => {
      clearTimeout(timer);
      secure.destroy();
      resolve(undefined);
    };
    // A failed handshake is the client's problem, not a reason to log a stack.
    secure.on('error', fail);
    secure.once('close', fail);
    secure.once('secure', () => {
      clearTimeout(timer);
      secure.off('close', fail);
      resolve(secure);
    });
  });
}

export async function startListener(
  spec: ListenerSpec,
  tls: TlsProvider,
  handlers: AcceptHandlers,
  handshakeTimeoutMs = 30_000,
): Promise<RunningListener> {
  if (spec.implicitTls && !tls.context())
    throw new Error(`listener ${spec.name} needs tls.cert and tls.key`);
  const admitted = (raw: Socket, peer: Peer): void => {
    let slot: Release | undefined;
    const fault = (err: unknown, socket: Socket): void => {
      slot?.();
      raw.destroy();
      socket.destroy();
      handlers.fault(err, spec, socket);
    };
    try {
      slot = handlers.admit(raw, spec, peer);
      if (!slot) return;
      const ctx = tls.context();
      if (!spec.implicitTls) return handlers.ready(raw, spec, slot, peer);
      if (!ctx) throw new Error(`listener ${spec.name} has no certificate`);
      void handshake(raw, ctx, handshakeTimeoutMs).then((secure) => {
        if (!secure) return slot?.();
        try {
          handlers.ready(secure, spec, slot!, peer);
        } catch (err) {
          fault(err, secure);
        }
      });
    } catch (err) {
      fault(err, raw);
    }
  };
  const accept = (raw: Socket): void => {
    raw.on('error', () => undefined);
    const gate = spec.proxy;
    if (!gate) return admitted(raw, socketPeer(raw));
    void gate.admit(raw).then((r) => {
      if (r.ok) return admitted(raw, r.peer);
      raw.destroy();
      try {
        handlers.proxyRefused?.(spec, r);
      } catch {
        // a log line that failed is no reason to fail the listener
      }
    });
  };
  const server = createServer(accept);
  server.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: spec.host, port: spec.port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  return {
    spec,
    address,
    // server.close() only calls back once every connection ended; sessions are the
    // gateway's business (grace period), so do not wait for that here.
    close: async () => void server.close(),
  };
}
