/** The TLS handshake of a connection, implicit or after STARTTLS, with its timeout. */
import { isIP, type Socket } from 'node:net';
import { checkServerIdentity, connect as tlsConnect, type TLSSocket } from 'node:tls';
import { hostPort, type Endpoint } from '../config/endpoint.js';
import { NetError } from './errors.js';
import type { TransportOptions } from './options.js';

/** The TLS handshake over a connected socket, within the handshake timeout. */
export function wrapTls(
  plain: Socket,
  ep: Endpoint,
  label: string,
  opts: TransportOptions,
): Promise<{ socket: TLSSocket; handshakeMs: number }> {
  const ms = opts.timeouts.handshakeMs ?? opts.timeouts.connectMs;
  const verify = opts.verify ?? ep.verify;
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const s = tlsConnect({
      socket: plain,
      // `host` is also the name the certificate is checked against (RFC 6125); SNI
      // (RFC 6066 3) carries names only, never an IP address.
      host: ep.servername,
      servername: isIP(ep.servername) !== 0 ? undefined : ep.servername,
      checkServerIdentity: (_host, cert) => checkServerIdentity(ep.servername, cert),
      rejectUnauthorized: verify,
      ca: opts.ca,
      minVersion: opts.minTlsVersion ?? 'TLSv1.2',
    });
    const t = setTimeout(() => {
      s.destroy();
      plain.destroy();
      reject(
        new NetError(
          'ETIMEOUT',
          `${label}: TLS handshake with ${hostPort(ep)} took longer than ${ms} ms`,
          { phase: 'handshake', limit: ms },
        ),
      );
    }, ms);
    const onErr = (err: Error): void => {
      clearTimeout(t);
      s.destroy();
      plain.destroy();
      reject(
        new NetError('ETLS', `${label}: TLS with ${hostPort(ep)} failed: ${err.message}`, {
          phase: 'handshake',
          cause: err,
        }),
      );
    };
    s.once('secureConnect', () => {
      clearTimeout(t);
      s.off('error', onErr);
      resolve({ socket: s, handshakeMs: Math.round(performance.now() - started) });
    });
    s.once('error', onErr);
  });
}
