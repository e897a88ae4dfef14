/**
 * Listening sockets for the front-ends: plain ones (143, 110; STARTTLS/STLS offered when a
 * certificate is configured) and implicit-TLS ones (993, 995). Certificates come from a
 * TlsProvider so SIGHUP can swap them without closing a listener or a session.
 */
import {
  createServer as createNetServer,
  type AddressInfo,
  type Server,
  type Socket,
} from 'node:net';
import {
  createSecureContext,
  createServer as createTlsServer,
  type SecureContext,
  type TLSSocket,
} from 'node:tls';

export interface ListenerSpec {
  /** config key: imap, imaps, pop3, pop3s */
  name: string;
  protocol: 'imap' | 'pop3';
  host: string;
  port: number;
  implicitTls: boolean;
}

export interface TlsMaterial {
  cert: string | Buffer;
  key: string | Buffer;
}

/** The gateway's certificate, replaceable at run time. */
export class TlsProvider {
  private ctx: SecureContext | undefined;
  private material: TlsMaterial | undefined;
  private readonly servers = new Set<ReturnType<typeof createTlsServer>>();

  constructor(material?: TlsMaterial) {
    if (material) this.set(material);
  }

  /** Throws (and keeps the old certificate) when the new one does not load. */
  set(material: TlsMaterial): void {
    const ctx = createSecureContext({ ...material, minVersion: 'TLSv1.2' });
    this.ctx = ctx;
    this.material = material;
    for (const s of this.servers) s.setSecureContext({ ...material, minVersion: 'TLSv1.2' });
  }

  context(): SecureContext | undefined {
    return this.ctx;
  }

  options(): TlsMaterial | undefined {
    return this.material;
  }

  track(server: ReturnType<typeof createTlsServer>): void {
    this.servers.add(server);
  }

  untrack(server: ReturnType<typeof createTlsServer>): void {
    this.servers.delete(server);
  }
}

export interface RunningListener {
  spec: ListenerSpec;
  address: AddressInfo;
  /** stop accepting; open sessions are not touched */
  close(): Promise<void>;
}

export async function startListener(
  spec: ListenerSpec,
  tls: TlsProvider,
  onSocket: (socket: Socket, spec: ListenerSpec) => void,
  handshakeTimeoutMs = 30_000,
): Promise<RunningListener> {
  let server: Server;
  if (spec.implicitTls) {
    const material = tls.options();
    if (!material) throw new Error(`listener ${spec.name} needs tls.cert and tls.key`);
    const s = createTlsServer({
      ...material,
      minVersion: 'TLSv1.2',
      handshakeTimeout: handshakeTimeoutMs,
    });
    tls.track(s);
    s.on('secureConnection', (sock: TLSSocket) => onSocket(sock, spec));
    // A failed handshake is the client's problem, not a reason to log a stack.
    s.on('tlsClientError', (_err, sock) => sock.destroy());
    s.on('close', () => tls.untrack(s));
    server = s;
  } else {
    server = createNetServer((sock) => onSocket(sock, spec));
  }
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
