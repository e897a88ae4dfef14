/**
 * Client addresses as the gateway counts them. One IPv6 host is usually given a whole
 * /64 (RFC 6177, RFC 7934), so counting per /128 would let one client take 2^64 "addresses";
 * limits and brakes key IPv6 clients by their /64 instead. An IPv4-mapped IPv6 address
 * (RFC 4291 2.5.5.2, what a dual-stack listener reports) is the IPv4 client it maps.
 */
import { isIP } from 'node:net';

/** `::ffff:192.0.2.1` -> `192.0.2.1`; anything else as it is ('unknown' when missing). */
export function unmapIpv4(address: string | undefined): string {
  const a = address ?? 'unknown';
  return /^::ffff:/i.test(a) && isIP(a.slice(7)) === 4 ? a.slice(7) : a;
}

/** The eight 16-bit groups of an IPv6 address (zone id dropped), or undefined. */
function ipv6Groups(address: string): number[] | undefined {
  const bare = address.replace(/%.*$/, '');
  if (isIP(bare) !== 6) return undefined;
  const halves = bare.split('::');
  const groups = (s: string): number[] => {
    if (s === '') return [];
    return s.split(':').flatMap((g) => {
      // an embedded IPv4 tail (RFC 4291 2.2 form 3) is two groups
      if (g.includes('.')) {
        const [a, b, c, d] = g.split('.').map(Number) as [number, number, number, number];
        return [(a << 8) | b, (c << 8) | d];
      }
      return [parseInt(g, 16)];
    });
  };
  const head = groups(halves[0] ?? '');
  const tail = halves.length > 1 ? groups(halves[1] ?? '') : [];
  return [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
}

/**
 * The key a client is counted under: the IPv4 address, the IPv6 /64 as `2001:db8:0:1::/64`,
 * or the string itself when it is no IP address.
 */
export function clientKey(address: string | undefined): string {
  const a = unmapIpv4(address);
  const g = ipv6Groups(a);
  if (!g) return a;
  const mapped = g.slice(0, 6).every((x, i) => (i === 5 ? x === 0xffff : x === 0));
  if (mapped) return `${g[6]! >> 8}.${g[6]! & 255}.${g[7]! >> 8}.${g[7]! & 255}`;
  return `${g
    .slice(0, 4)
    .map((x) => x.toString(16))
    .join(':')}::/64`;
}

/** An address block from the config: `10.0.0.0/8`, `2001:db8::/32`, or one address. */
export interface Cidr {
  family: 4 | 6;
  /** the address as 8 groups of 16 bits (IPv4 in the last two) */
  groups: number[];
  bits: number;
}

function groupsOf(address: string): { family: 4 | 6; groups: number[] } | undefined {
  const a = unmapIpv4(address);
  if (isIP(a) === 4) {
    const [p, q, r, s] = a.split('.').map(Number) as [number, number, number, number];
    return { family: 4, groups: [0, 0, 0, 0, 0, 0, (p << 8) | q, (r << 8) | s] };
  }
  const g = ipv6Groups(a);
  return g ? { family: 6, groups: g } : undefined;
}

/** `10.0.0.0/8` -> a Cidr, or a sentence saying what is wrong with it. */
export function parseCidr(text: string): Cidr | string {
  const [addr = '', len, extra] = text.split('/');
  if (extra !== undefined) return 'is not an address or address/prefix';
  const parsed = groupsOf(addr);
  if (!parsed || addr !== addr.trim())
    return 'is not an IP address or block like 10.0.0.0/8 or 2001:db8::/32';
  const max = parsed.family === 4 ? 32 : 128;
  if (len !== undefined && !/^\d{1,3}$/.test(len)) return `prefix length must be 0-${max}`;
  const bits = len === undefined ? max : Number(len);
  if (bits > max) return `prefix length must be 0-${max}`;
  return { family: parsed.family, groups: parsed.groups, bits };
}

/** Is `address` (IPv4-mapped IPv6 counts as IPv4) inside the block? */
export function cidrContains(block: Cidr, address: string | undefined): boolean {
  const parsed = groupsOf(address ?? '');
  if (!parsed || parsed.family !== block.family) return false;
  // IPv4 sits in the last 32 bits of the 128
  let bits = block.family === 4 ? block.bits + 96 : block.bits;
  for (let i = 0; i < 8 && bits > 0; i++, bits -= 16) {
    const mask = bits >= 16 ? 0xffff : (0xffff << (16 - bits)) & 0xffff;
    if ((parsed.groups[i]! & mask) !== (block.groups[i]! & mask)) return false;
  }
  return true;
}

/**
 * A list of address blocks from the config (`proxyProtocol.trusted`, `brakes.trusted`),
 * parsed once and asked for each connection or login.
 */
export class AddressBlocks {
  static readonly none = new AddressBlocks([]);

  private constructor(private readonly blocks: readonly Cidr[]) {}

  /**
   * Throws on a bad entry, naming `key` and the entry. The config's schema refuses those
   * first (with the same words); this guards a Config built by hand.
   */
  static parse(key: string, entries: readonly string[]): AddressBlocks {
    return new AddressBlocks(
      entries.map((t) => {
        const c = parseCidr(t);
        if (typeof c === 'string') throw new Error(`${key}: ${t} ${c}`);
        return c;
      }),
    );
  }

  /** Is `address` (IPv4-mapped IPv6 counts as IPv4) in one of the blocks? */
  has(address: string | undefined): boolean {
    return this.blocks.some((c) => cidrContains(c, address));
  }
}
