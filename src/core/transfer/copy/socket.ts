/** The TCP (or implicit TLS) connection of a session, with a connect timeout. */
import net from 'node:net';
import tls from 'node:tls';
import type { Endpoint } from '../../config/endpoint.js';
import { ImapError } from './errors.js';

export function openSocket(ep: Endpoint, timeoutMs: number, label: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const implicit = ep.tls === 'implicit';
    const s: net.Socket = implicit
      ? tls.connect({
          host: ep.host,
          port: ep.port,
          servername: ep.servername,
          rejectUnauthorized: ep.verify,
        })
      : net.connect({ host: ep.host, port: ep.port });
    const t = setTimeout(() => {
      s.destroy();
      reject(new ImapError('ECONNECT', `${label} ${ep.url}: no connection within ${timeoutMs} ms`));
    }, timeoutMs);
    s.once(implicit ? 'secureConnect' : 'connect', () => {
      clearTimeout(t);
      s.removeAllListeners('error');
      s.setNoDelay(true);
      resolve(s);
    });
    s.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(t);
      const code = implicit && !err.code?.startsWith('E') ? 'ETLS' : 'ECONNECT';
      reject(new ImapError(code, `${label} ${ep.url}: ${err.message}`, { cause: err }));
    });
  });
}
