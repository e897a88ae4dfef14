/**
 * The HTTP endpoint of `autoport proxy` (config control.metrics): GET /metrics in the
 * Prometheus text format, GET /healthz as a small JSON document (200 when healthy, 503
 * otherwise). HEAD works on both; anything else is 404 (405 for another method on a known
 * path). Requests carry no body: one that announces a body gets 413 and the connection is
 * closed. There is no authentication, so the endpoint belongs on loopback (or behind
 * something that adds it); another host is allowed with a warning.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isLoopbackHost } from '../config/endpoint.js';
import type { ListenAddress } from '../config/types.js';
import { OperatorError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { Health } from './health.js';

/** A scraper needs one connection; these bound what a misbehaving client can hold. */
export const METRICS_HTTP_LIMITS = {
  maxConnections: 16,
  maxHeaderBytes: 8 * 1024,
  headersTimeoutMs: 5_000,
  requestTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
  /** how often Node checks the two timeouts above */
  checkEveryMs: 1_000,
};

export interface MetricsServerDeps {
  /** the exposition text (the registry's metrics()) */
  metrics: () => Promise<string> | string;
  /** its Content-Type (the registry's contentType) */
  contentType: string;
  /** may ask the state store (endpoint.ts bounds how often) */
  health: () => Health | Promise<Health>;
  logger: Logger;
}

export interface MetricsServer {
  /** the bound address (port 0 in the config becomes the real port) */
  readonly address: ListenAddress;
  /** stop accepting and drop open connections */
  close(): Promise<void>;
}

const PATHS = new Set(['/metrics', '/healthz']);

function send(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  type: string,
  body: string,
  headers: Record<string, string> = {},
): void {
  const bytes = Buffer.from(body, 'utf8');
  res.writeHead(status, {
    'Content-Type': type,
    'Content-Length': String(bytes.length),
    'Cache-Control': 'no-store',
    ...headers,
  });
  res.end(req.method === 'HEAD' ? undefined : bytes);
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

async function handle(
  req: IncomingMessage,
  res: ServerResponse,
  deps: MetricsServerDeps,
): Promise<void> {
  const path = (req.url ?? '/').split('?', 1)[0]!;
  const text = 'text/plain; charset=utf-8';
  if (!PATHS.has(path)) return send(req, res, 404, text, 'not found: try /metrics or /healthz\n');
  if (req.method !== 'GET' && req.method !== 'HEAD')
    return send(req, res, 405, text, 'only GET and HEAD\n', { Allow: 'GET, HEAD' });
  if (hasBody(req)) {
    // Not reading it: the connection goes, so no unread body is taken for the next request.
    res.shouldKeepAlive = false;
    return send(req, res, 413, text, 'a request body is not accepted here\n', {
      Connection: 'close',
    });
  }
  if (path === '/metrics') {
    let body: string;
    try {
      body = await deps.metrics();
    } catch (err) {
      deps.logger.error('rendering the metrics failed', { err });
      return send(req, res, 500, text, 'rendering the metrics failed; see the gateway log\n');
    }
    return send(req, res, 200, deps.contentType, body);
  }
  const h = await deps.health();
  send(
    req,
    res,
    h.status === 'ok' ? 200 : 503,
    'application/json; charset=utf-8',
    `${JSON.stringify(h)}\n`,
  );
}

export async function startMetricsServer(
  at: ListenAddress,
  deps: MetricsServerDeps,
  limits: Partial<typeof METRICS_HTTP_LIMITS> = {},
): Promise<MetricsServer> {
  const L = { ...METRICS_HTTP_LIMITS, ...limits };
  const server = createServer(
    {
      maxHeaderSize: L.maxHeaderBytes,
      headersTimeout: L.headersTimeoutMs,
      requestTimeout: L.requestTimeoutMs,
      keepAliveTimeout: L.keepAliveTimeoutMs,
      connectionsCheckingInterval: L.checkEveryMs,
    },
    (req, res) => {
      handle(req, res, deps).catch((err: unknown) => {
        deps.logger.error('the metrics endpoint failed on a request', { err });
        res.destroy();
      });
    },
  );
  server.maxConnections = L.maxConnections;
  // also as properties: not every Node version takes all of them as options
  server.headersTimeout = L.headersTimeoutMs;
  server.requestTimeout = L.requestTimeoutMs;
  server.keepAliveTimeout = L.keepAliveTimeoutMs;
  server.maxHeadersCount = 64;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: at.host, port: at.port, exclusive: true }, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const where = `${at.host.includes(':') ? `[${at.host}]` : at.host}:${at.port}`;
    const hint =
      e.code === 'EADDRINUSE'
        ? `another process uses ${where}: stop it, or change control.metrics in the config (another host:port, or false to turn the endpoint off)`
        : e.code === 'EACCES'
          ? `ports below 1024 need root or CAP_NET_BIND_SERVICE: change control.metrics in the config`
          : `check control.metrics in the config (an address of this host, or false to turn the endpoint off)`;
    const what =
      e.code === 'EADDRINUSE'
        ? 'the address is in use'
        : e.code === 'EACCES'
          ? 'permission denied'
          : e.message;
    throw new OperatorError(
      `cannot serve metrics on ${where}: ${what}`,
      hint,
      e.code ?? 'EMETRICS',
      { cause: err },
    );
  }
  server.on('error', (err) => deps.logger.error('metrics endpoint error', { err }));
  const bound = server.address() as AddressInfo;
  const address = { host: bound.address, port: bound.port };
  if (!isLoopbackHost(at.host))
    deps.logger.warn(
      'the metrics endpoint listens beyond loopback and has no authentication: anyone who reaches it sees session and account counts',
      { address: `${at.host}:${address.port}`, hint: 'set control.metrics to 127.0.0.1:PORT' },
    );
  let closing: Promise<void> | undefined;
  return {
    address,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
