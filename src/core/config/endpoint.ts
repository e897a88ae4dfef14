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
    /** the URL as written, with any user:password@ part masked */
    public readonly value: string,
    /** what is wrong, phrased to follow the value: `"imap://x:99999" - port out of range` */
    public readonly problem: string,
  ) {
    super(problem);
  }
}

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return (
    h === 'localhost' ||
    h === '::1' ||
    h === '0:0:0:0:0:0:0:1' ||
    /^(::ffff:)?127(\.\d{1,3}){3}$/.test(h)
  );
}

const PARAMS = ['tls', 'verify', 'servername', 'force-plain'];

/** scheme://[userinfo@]host[:port]... split by hand: WHATWG URL rejects a bad port with a bare "Invalid URL". */
const AUTHORITY = /^([a-z][a-z0-9+.-]*):\/\/(?:([^@/?#]*)@)?(\[[^\]]*\]|[^:/?#]*)(?::([^/?#]*))?/i;

function maskUserinfo(value: string): string {
  return value.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^@/?#]*@/i, '$1***@');
}

/** Parse an endpoint URL; throws EndpointError with an operator-readable problem. */
export function parseEndpoint(value: string, expect?: Protocol[]): Endpoint {
  const shown = maskUserinfo(value);
  function fail(problem: string): never {
    throw new EndpointError(shown, problem);
  }
  const parts = AUTHORITY.exec(value);
  if (!parts) fail('not a URL; write it like imap://mail.example.org:143?tls=starttls');
  const [, rawScheme = '', userinfo, , rawPort] = parts;
  const scheme = rawScheme.toLowerCase();
  const info = SCHEMES[scheme];
  if (!info) fail(`unknown scheme "${scheme}"; use one of ${Object.keys(SCHEMES).join(', ')}`);
  const known: SchemeInfo = info;
  if (expect && !expect.includes(known.protocol)) {
    const allowed = Object.keys(SCHEMES)
      .filter((k) => expect.includes((SCHEMES[k] as SchemeInfo).protocol))
      .map((k) => `${k}://`);
    const list =
      allowed.length > 1 ? `${allowed.slice(0, -1).join(', ')} or ${allowed.at(-1)}` : allowed[0];
    fail(`must use ${list}, not ${scheme}://`);
  }
  if (userinfo !== undefined) {
    fail('carries a user name or password; credentials never go in URLs (use passwordFile)');
  }
  if (rawPort !== undefined && rawPort !== '') {
    if (!/^\d+$/.test(rawPort)) fail(`port "${rawPort}" is not a number`);
    const n = Number(rawPort);
    if (n < 1 || n > 65535) fail('port out of range (1-65535)');
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return fail('not a URL; write it like imap://mail.example.org:143?tls=starttls');
  }
  if (!url.hostname) fail('has no host name');
  if (url.pathname !== '' && url.pathname !== '/') {
    fail(`has a path "${url.pathname}"; an endpoint is scheme://host:port?options`);
  }
  if (url.hash) fail(`has a fragment "${url.hash}"; an endpoint is scheme://host:port?options`);
  const params = url.searchParams;
  for (const key of params.keys()) {
    if (!PARAMS.includes(key)) fail(`unknown parameter "${key}"; known: ${PARAMS.join(', ')}`);
  }
  const port = url.port ? Number(url.port) : known.port;
  let tls = known.tls;
  const tlsParam = params.get('tls');
  if (tlsParam !== null) {
    if (tlsParam !== 'starttls' && tlsParam !== 'implicit' && tlsParam !== 'none') {
      fail(`tls=${tlsParam} is not a TLS mode; use tls=starttls, tls=implicit or tls=none`);
    }
    tls = tlsParam as TlsMode;
  }
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const forcePlain = params.get('force-plain');
  if (forcePlain !== null && forcePlain !== 'true' && forcePlain !== 'false') {
    fail(`force-plain=${forcePlain}; use force-plain=true or leave it out`);
  }
  // LMTP carries no passwords (RFC 2033 has no AUTH in the usual deployment), so plain is fine.
  if (
    tls === 'none' &&
    known.protocol !== 'lmtp' &&
    !isLoopbackHost(host) &&
    forcePlain !== 'true'
  ) {
    fail(
      'sends passwords in clear to a non-loopback host; use tls=starttls or an implicit-TLS scheme, or add force-plain=true if the link is private',
    );
  }
  const verifyParam = params.get('verify');
  if (verifyParam !== null && verifyParam !== 'true' && verifyParam !== 'false') {
    fail(`verify=${verifyParam}; use verify=true or verify=false`);
  }
  const servername = params.get('servername');
  if (servername === '') fail('servername= is empty; give the name on the certificate');
  return {
    url: value,
    protocol: known.protocol,
    host,
    port,
    tls,
    verify: verifyParam !== 'false',
    servername: servername ?? host,
    submission: known.submission,
  };
}

/** host:port as a reader would type it (IPv6 in brackets). */
export function hostPort(ep: Pick<Endpoint, 'host' | 'port'>): string {
  return ep.host.includes(':') ? `[${ep.host}]:${ep.port}` : `${ep.host}:${ep.port}`;
}
