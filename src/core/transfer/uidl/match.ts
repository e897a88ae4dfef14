/**
 * Pairing the source's POP3 messages with their copies on the destination, both read over
 * POP3: a message is the pair (size from LIST, hash of its header from TOP n 0). A pair
 * that only one message on each side has is a match; a pair that two or more messages
 * share on either side (the same message delivered twice, or two bounces of one kind)
 * cannot be told apart, so those messages keep the destination's own UIDL and are counted
 * as ambiguous. Pure: the caller reads the servers.
 */

export interface Pop3Message {
  /** RFC 1939 7: 1 to 70 characters 0x21..0x7E */
  uidl: string;
  size: number;
  hash: string;
}

export interface UidlMatch {
  /** destination UIDL -> source UIDL, only where the two differ */
  pairs: Array<[string, string]>;
  /** messages pairing one for one (also those whose UIDLs were equal already) */
  matched: number;
  /** destination messages whose (size, hash) several messages share */
  ambiguous: number;
  /** destination messages with no source message of that (size, hash) */
  unmatched: number;
}

const keyOf = (m: Pop3Message): string => `${m.size} ${m.hash}`;

function group(list: readonly Pop3Message[]): Map<string, Pop3Message[]> {
  const out = new Map<string, Pop3Message[]>();
  for (const m of list) {
    const k = keyOf(m);
    const g = out.get(k);
    if (g) g.push(m);
    else out.set(k, [m]);
  }
  return out;
}

export function matchUidls(
  source: readonly Pop3Message[],
  destination: readonly Pop3Message[],
): UidlMatch {
  const src = group(source);
  const result: UidlMatch = { pairs: [], matched: 0, ambiguous: 0, unmatched: 0 };
  for (const [k, dst] of group(destination)) {
    const s = src.get(k);
    if (!s) result.unmatched += dst.length;
    else if (s.length > 1 || dst.length > 1) result.ambiguous += dst.length;
    else {
      const [d] = dst as [Pop3Message];
      const [from] = s as [Pop3Message];
      result.matched++;
      if (d.uidl !== from.uidl) result.pairs.push([d.uidl, from.uidl]);
    }
  }
  return dropClashes(result, destination);
}

/**
 * RFC 1939 7: a UIDL names one message of the maildrop. A source UIDL that another
 * destination message shows as its own (and keeps) would name two: that pair is dropped.
 */
function dropClashes(result: UidlMatch, destination: readonly Pop3Message[]): UidlMatch {
  const renamed = new Set(result.pairs.map(([d]) => d));
  const kept = new Set(destination.map((m) => m.uidl).filter((u) => !renamed.has(u)));
  const pairs = result.pairs.filter(([, s]) => !kept.has(s));
  const clashes = result.pairs.length - pairs.length;
  return {
    ...result,
    pairs,
    matched: result.matched - clashes,
    ambiguous: result.ambiguous + clashes,
  };
}
