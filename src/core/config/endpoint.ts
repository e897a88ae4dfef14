/**
 * A server endpoint written as a URL so the reader sees scheme, TLS and port at once:
 *   imap://host:143?tls=starttls   imaps://host:993   pop3://host:110   pop3s://host:995
 *   smtp://host:25   smtps://host:465   submission://host:587   lmtp://host:24
 * Query parameters: tls=starttls|implicit|none, verify=false (skip certificate checks),
 * servername=<SNI name>, force-plain=true (allow tls=none on a non-loopback host).
 */
export type Protocol = 'imap' | 'pop3' | 'smtp' | 'lmtp';
export type TlsMode = 'implicit' | 'starttls' | 'none';

export interface Endpoint {
  /** the URL as written in the config, for messages */
  url: string;
  protocol: Protocol;
  host: string;
  port: number;
  tls: TlsMode;
  /** verify the server certificate (default true) */
  verify: boolean;
  /** SNI / certificate name to check; defaults to host */
  servername: string;
  /** true for submission:// (587) and smtps:// (465): relaying needs AUTH */
  submission: boolean;
}

interface SchemeInfo {
  protocol: Protocol;
  port: number;
  tls: TlsMode;
  submission: boolean;
}

const SCHEMES: Record<string, SchemeInfo> = {
  imap: { protocol: 'imap', port: 143, tls: 'starttls', submission: false },
  imaps: { protocol: 'imap', port: 993, tls: 'implicit', submission: false },
  pop3: { protocol: 'pop3', port: 110, tls: 'starttls', submission: false },
  pop3s: { protocol: 'pop3', port: 995, tls: 'implicit', submission: false },
  smtp: { protocol: 'smtp', port: 25, tls: 'starttls', submission: false },
  smtps: { protocol: 'smtp', port: 465, tls: 'implicit', submission: true },
  submission: { protocol: 'smtp', port: 587, tls: 'starttls', submission: true },
  lmtp: { protocol: 'lmtp', port: 24, tls: 'none', submission: false },
};

export class EndpointError extends Error {
  constructor(
    public readonly value: string,
    public readonly problem: string,
  ) {
    super(problem);
  }
}

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h);
}

/** Parse an endpoint URL; throws EndpointError with an operator-readable problem. */
export function parseEndpoint(value: string, expect?: Protocol[]): Endpoint {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new EndpointError(
      value,
      'is not a URL; write it like imap://mail.example.org:143?tls=starttls',
    );
  }
  const scheme = url.protocol.replace(/:$/, '');
  const info = SCHEMES[scheme];
  if (!info) {
    throw new EndpointError(
      value,
      `has unknown scheme "${scheme}"; use one of ${Object.keys(SCHEMES).join(', ')}`,
    );
  }
  if (expect && !expect.includes(info.protocol)) {
    throw new EndpointError(value, `must be a ${expect.join(' or ')} URL, not ${scheme}://`);
  }
  if (!url.hostname) throw new EndpointError(value, 'has no host name');
  const port = url.port ? Number(url.port) : info.port;
  const params = url.searchParams;
  let tls = info.tls;
  const tlsParam = params.get('tls');
  if (tlsParam !== null) {
    if (tlsParam !== 'starttls' && tlsParam !== 'implicit' && tlsParam !== 'none') {
      throw new EndpointError(
        value,
        `has tls=${tlsParam}; use tls=starttls, tls=implicit or tls=none`,
      );
    }
    tls = tlsParam;
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (
    tls === 'none' &&
    info.protocol !== 'lmtp' &&
    !isLoopbackHost(host) &&
    params.get('force-plain') !== 'true'
  ) {
    throw new EndpointError(
      value,
      'sends passwords in clear to a non-loopback host; use tls=starttls or an implicit-TLS scheme, or add force-plain=true if the link is private',
    );
  }
  const verifyParam = params.get('verify');
  if (verifyParam !== null && verifyParam !== 'true' && verifyParam !== 'false') {
    throw new EndpointError(value, `has verify=${verifyParam}; use verify=true or verify=false`);
  }
  for (const key of params.keys()) {
    if (!['tls', 'verify', 'servername', 'force-plain'].includes(key)) {
      throw new EndpointError(
        value,
        `has unknown parameter "${key}"; known: tls, verify, servername, force-plain`,
      );
    }
  }
  return {
    url: value,
    protocol: info.protocol,
    host,
    port,
    tls,
    verify: verifyParam !== 'false',
    servername: params.get('servername') ?? host,
    submission: info.submission,
  };
}
