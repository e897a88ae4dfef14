/**
 * Opening a connection to a mail server: TCP within the connect timeout, then TLS at once
 * for implicit-TLS endpoints (RFC 8314 3.3), or later with Transport.startTls. Every
 * timer and listener taken here is released on every outcome.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { hostPort, type Endpoint } from '../config/endpoint.js';
import { NetError } from './errors.js';
import { reusingOnread, type ChunkRouter } from './fast-reads.js';
import { wrapTls } from './tls.js';
import type { TransportOptions } from './options.js';
import { Transport } from './transport.js';

/** TCP keepalive probes start after this much silence (a NAT may forget a quiet link). */
const KEEPALIVE_MS = 60_000;

/** TCP (and for implicit TLS, the handshake) to an endpoint, within the connect timeout. */
export async function openTransport(
  ep: Endpoint,
  label: string,
  opts: TransportOptions,
): Promise<Transport> {
  // STARTTLS hands the socket to TLS, which reads on its own: onread only for plain links.
  const router: ChunkRouter | undefined =
    ep.tls === 'none' && opts.fastReads !== false ? { sink: () => true } : undefined;
  const started = performance.now();
  const socket = await tcpConnect(ep, label, opts, router);
  socket.setNoDelay(true);
  socket.setKeepAlive(true, opts.keepAliveMs ?? KEEPALIVE_MS);
  const connectMs = Math.round(performance.now() - started);
  opts.onConnected?.(connectMs);
  if (ep.tls !== 'implicit' || opts.deferTls) return new Transport(socket, ep, label, opts, router);
  const secure = await wrapTls(socket, ep, label, opts);
  return new Transport(secure.socket, ep, label, opts, undefined, secure.handshakeMs);
}

function tcpConnect(
  ep: Endpoint,
  label: string,
  opts: TransportOptions,
  router: ChunkRouter | undefined,
): Promise<Socket> {
  const ms = opts.timeouts.connectMs;
  return new Promise<Socket>((resolve, reject) => {
    const s = netConnect({
      host: ep.host,
      port: ep.port,
      ...(router ? { onread: reusingOnread(router) } : {}),
    });
    const t = setTimeout(() => {
      s.destroy();
      reject(
        new NetError('ETIMEOUT', `${label}: no connection to ${hostPort(ep)} within ${ms} ms`, {
          phase: 'connect',
          limit: ms,
        }),
      );
    }, ms);
    const onErr = (err: Error): void => {
      clearTimeout(t);
      s.destroy();
      const why = (err as NodeJS.ErrnoException).code ?? err.message;
      reject(
        new NetError('ECONNECT', `${label}: cannot connect to ${hostPort(ep)}: ${why}`, {
          phase: 'connect',
          cause: err,
        }),
      );
    };
    s.once('connect', () => {
      clearTimeout(t);
      s.off('error', onErr);
      resolve(s);
    });
    s.once('error', onErr);
  });
}
