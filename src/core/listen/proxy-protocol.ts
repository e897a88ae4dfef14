/**
 * Inbound PROXY protocol (HAProxy's proxy-protocol.txt, versions 1 and 2): a load
 * balancer in front of the gateway prefixes each connection with the client's real
 * address. The header is read before anything else on the connection (greeting, TLS
 * handshake), within a deadline and a size cap, and only on listeners the config names,
 * from addresses it trusts (proxy-protocol.txt 7: a receiver must never guess whether a
 * header is present).
 *
 * The parser is a pure function of the bytes received so far: it says "more", "done" with
 * the header's length, or "invalid" as soon as the prefix can no longer become a header,
 * so a client that speaks IMAP at once is refused on its first bytes.
 */
import { isIP, type Socket } from 'node:net';
import { unmapIpv4 } from '../net-address.js';

export interface ProxyEndpoint {
  address: string;
  port: number;
}

/**
 * A complete header. `client` undefined: the connection's own endpoints count (v2 LOCAL,
 * a health check of the proxy itself; v1 UNKNOWN; v2 UNSPEC or UNIX families).
 */
export interface ProxyHeader {
  version: 1 | 2;
  length: number;
  client?: ProxyEndpoint;
  server?: ProxyEndpoint;
}

export type ProxyParse =
  { kind: 'more' } | { kind: 'done'; header: ProxyHeader } | { kind: 'invalid'; reason: string };

const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
/** proxy-protocol.txt 2.1: "a receiver may reject a header longer than 107 bytes" (CRLF included) */
export const V1_MAX_BYTES = 107;
/** proxy-protocol.txt 2.2: the 12-byte v2 signature */
const V2_SIGNATURE = Buffer.from([
  0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
]);
const V2_FIXED = 16;

const MORE: ProxyParse = { kind: 'more' };
const invalid = (reason: string): ProxyParse => ({ kind: 'invalid', reason });

/** `buf` is a prefix of `of` (or `of` of `buf`) */
function agrees(buf: Buffer, of: Buffer): boolean {
  const n = Math.min(buf.length, of.length);
  return buf.subarray(0, n).equals(of.subarray(0, n));
}

function port(s: string): number | undefined {
  // proxy-protocol.txt 2.1: ports in decimal, 0..65535, no leading zero
  if (!/^(0|[1-9]\d{0,4})$/.test(s)) return undefined;
  const n = Number(s);
  return n <= 65535 ? n : undefined;
}

function parseV1(buf: Buffer): ProxyParse {
  const lf = buf.indexOf(0x0a);
  if (lf < 0) return buf.length >= V1_MAX_BYTES ? invalid('v1 header too long') : MORE;
  if (lf + 1 > V1_MAX_BYTES) return invalid('v1 header too long');
  if (lf === 0 || buf[lf - 1] !== 0x0d) return invalid('v1 header not ended by CRLF');
  const line = buf.subarray(0, lf - 1).toString('latin1');
  const length = lf + 1;
  const f = line.split(' ');
  if (f[1] === 'UNKNOWN') return { kind: 'done', header: { version: 1, length } };
  if (f.length !== 6) return invalid('v1 header needs PROXY TCP4|TCP6 src dst sport dport');
  const [, proto, src, dst, sport, dport] = f as [string, string, string, string, string, string];
  const family = proto === 'TCP4' ? 4 : proto === 'TCP6' ? 6 : 0;
  if (family === 0) return invalid(`v1 protocol must be TCP4, TCP6 or UNKNOWN`);
  if (isIP(src) !== family || isIP(dst) !== family)
    return invalid(`v1 addresses are not ${proto} addresses`);
  const sp = port(sport);
  const dp = port(dport);
  if (sp === undefined || dp === undefined) return invalid('v1 port out of range');
  return {
    kind: 'done',
    header: {
      version: 1,
      length,
      client: { address: unmapIpv4(src), port: sp },
      server: { address: unmapIpv4(dst), port: dp },
    },
  };
}

function ipv6(b: Buffer): string {
  // RFC 4291 2.5.5.2: an IPv4-mapped address is the IPv4 client it maps
  if (b.subarray(0, 10).every((x) => x === 0) && b.readUInt16BE(10) === 0xffff)
    return `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  return compress(groups);
}

/** RFC 5952 4.2.3: the longest run of zero groups (2 or more) becomes "::" */
function compress(groups: string[]): string {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

function parseV2(buf: Buffer, maxBytes: number): ProxyParse {
  if (buf.length < V2_FIXED) return MORE;
  const verCmd = buf[12]!;
  // proxy-protocol.txt 2.2: the high nibble is the version (2), the low one the command
  if (verCmd >> 4 !== 2) return invalid('v2 version nibble is not 2');
  const command = verCmd & 0x0f;
  if (command > 1) return invalid('v2 command is neither LOCAL nor PROXY');
  const family = buf[13]! >> 4;
  const transport = buf[13]! & 0x0f;
  const len = buf.readUInt16BE(14);
  const length = V2_FIXED + len;
  if (length > maxBytes) return invalid(`v2 header of ${length} bytes is over the cap`);
  if (buf.length < length) return MORE;
  // LOCAL: the proxy's own connection (health check); its address block is ignored.
  if (command === 0) return { kind: 'done', header: { version: 2, length } };
  if (family > 3 || transport > 2) return invalid('v2 address family or transport unknown');
  // UNSPEC and UNIX: "the receiver must use the real connection endpoints"
  if (family === 0 || family === 3) return { kind: 'done', header: { version: 2, length } };
  if (transport !== 1) return invalid('v2 transport is not STREAM');
  const a = buf.subarray(V2_FIXED, length);
  if (family === 1) {
    if (len < 12) return invalid('v2 INET address block too short');
    const ip = (o: number): string => `${a[o]}.${a[o + 1]}.${a[o + 2]}.${a[o + 3]}`;
    return {
      kind: 'done',
      header: {
        version: 2,
        length,
        client: { address: ip(0), port: a.readUInt16BE(8) },
        server: { address: ip(4), port: a.readUInt16BE(10) },
      },
    };
  }
  if (len < 36) return invalid('v2 INET6 address block too short');
  // TLVs after the addresses (2.2.7) carry nothing the gateway uses: skipped with `len`.
  return {
    kind: 'done',
    header: {
      version: 2,
      length,
      client: { address: ipv6(a.subarray(0, 16)), port: a.readUInt16BE(32) },
      server: { address: ipv6(a.subarray(16, 32)), port: a.readUInt16BE(34) },
    },
  };
}

/**
 * The header at the start of `buf` (all bytes received so far). `maxBytes` caps a v2
 * header (16 bytes plus addresses and TLVs); a v1 header is capped at 107 bytes by its spec.
 */
export function parseProxyHeader(buf: Buffer, maxBytes: number): ProxyParse {
  if (buf.length === 0) return MORE;
  if (agrees(buf, V1_PREFIX)) return buf.length < V1_PREFIX.length ? MORE : parseV1(buf);
  if (agrees(buf, V2_SIGNATURE)) {
    return buf.length < V2_SIGNATURE.length ? MORE : parseV2(buf, maxBytes);
  }
  return invalid('no PROXY protocol header');
}

export type ProxyRead =
  { ok: true; header: ProxyHeader } | { ok: false; reason: string; received: number };

/**
 * Read the header from `socket` within `timeoutMs`. Bytes after it are put back on the
 * socket for whoever reads next (a TLS handshake or a protocol session). On failure the
 * socket is left open: the caller decides how to close it and what to count.
 */
export function readProxyHeader(
  socket: Socket,
  opts: { timeoutMs: number; maxBytes: number },
): Promise<ProxyRead> {
  return new Promise((resolve) => {
    let buf: Buffer = Buffer.alloc(0);
    let settled = false;
    const finish = (r: ProxyRead, rest?: Buffer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.off('readable', onReadable);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      if (rest && rest.length > 0) socket.unshift(rest);
      resolve(r);
    };
    const onEnd = (): void =>
      finish({ ok: false, reason: 'closed before a PROXY header', received: buf.length });
    const onReadable = (): void => {
      let chunk: Buffer | null;
      while (!settled && (chunk = socket.read() as Buffer | null) !== null) {
        buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
        const p = parseProxyHeader(buf, opts.maxBytes);
        if (p.kind === 'done')
          return finish({ ok: true, header: p.header }, buf.subarray(p.header.length));
        if (p.kind === 'invalid')
          return finish({ ok: false, reason: p.reason, received: buf.length });
        if (buf.length > Math.max(opts.maxBytes, V1_MAX_BYTES))
          return finish({ ok: false, reason: 'PROXY header over the cap', received: buf.length });
      }
    };
    const timer = setTimeout(
      () => finish({ ok: false, reason: 'no PROXY header in time', received: buf.length }),
      opts.timeoutMs,
    );
    timer.unref?.();
    socket.on('readable', onReadable);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
  });
}
