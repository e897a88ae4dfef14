/**
 * Mailbox names <-> logical paths (segments) for one server's namespace, and the checks
 * that tell an operator which names a destination may refuse. Pure functions.
 */
import type { NamespaceInfo } from '../types.js';
import { decodeMUtf7, encodeMUtf7, MUtf7Error } from './mutf7.js';

/**
 * A hierarchy delimiter found inside one name segment cannot be written as-is: the
 * destination would read it as a level of hierarchy. We write a character that looks
 * the same instead, so the user still recognises the folder, and report it:
 *   "." -> U+2024 ONE DOT LEADER,  "/" -> U+2215 DIVISION SLASH,
 *   "\" -> U+29F5 REVERSE SOLIDUS OPERATOR,  anything else -> "_".
 * The choice is one-way (a later reverse migration keeps the lookalike), which is
 * what imapsync's `--regextrans2` recipes and Dovecot's own `maildir_name_escape`-less
 * layouts do as well.
 */
export const DELIMITER_LOOKALIKES: Readonly<Record<string, string>> = {
  '.': '\u2024',
  '/': '\u2215',
  '\\': '\u29f5',
};

export function lookalikeFor(
  delimiter: string,
  overrides?: Readonly<Record<string, string>>,
): string {
  return overrides?.[delimiter] ?? DELIMITER_LOOKALIKES[delimiter] ?? '_';
}

export function isInbox(name: string): boolean {
  return name.toUpperCase() === 'INBOX';
}

function hasPrefix(name: string, prefix: string): boolean {
  if (name.startsWith(prefix)) return true;
  // INBOX is case-insensitive (RFC 3501 5.1), so is an "INBOX." prefix.
  return /^inbox/i.test(prefix) && name.toUpperCase().startsWith(prefix.toUpperCase());
}

export type ParsedName =
  | { kind: 'mailbox'; segments: string[] }
  | { kind: 'root' }
  | { kind: 'other-namespace'; prefix: string }
  | { kind: 'outside-prefix' };

/**
 * Split a mailbox name into logical segments: the personal namespace prefix removed,
 * INBOX kept as "INBOX". On an "INBOX."-prefixed server (Courier, Cyrus) "INBOX.Sent"
 * is the top-level folder ["Sent"]; on a server without prefix (Dovecot) "INBOX/foo"
 * is a real child of INBOX, ["INBOX", "foo"].
 */
export function parseName(name: string, ns: NamespaceInfo): ParsedName {
  if (isInbox(name)) return { kind: 'mailbox', segments: ['INBOX'] };
  for (const other of ns.otherPrefixes ?? []) {
    if (other && other !== ns.prefix && name.startsWith(other))
      return { kind: 'other-namespace', prefix: other };
    // A namespace root is listed without its trailing delimiter ("shared").
    if (other && ns.delimiter && other === name + ns.delimiter)
      return { kind: 'other-namespace', prefix: other };
  }
  let rest = name;
  if (ns.prefix) {
    if (!hasPrefix(name, ns.prefix)) {
      const bare =
        ns.delimiter && ns.prefix.endsWith(ns.delimiter)
          ? ns.prefix.slice(0, -ns.delimiter.length)
          : '';
      return bare && name === bare ? { kind: 'root' } : { kind: 'outside-prefix' };
    }
    rest = name.slice(ns.prefix.length);
  }
  if (rest === '') return { kind: 'root' };
  return { kind: 'mailbox', segments: ns.delimiter ? rest.split(ns.delimiter) : [rest] };
}

/** The inverse of parseName for a destination namespace. */
export function renderName(segments: readonly string[], ns: NamespaceInfo): string {
  const first = segments[0];
  if (segments.length === 1 && first !== undefined && isInbox(first)) return 'INBOX';
  const d = ns.delimiter ?? '';
  let segs = segments;
  // On an "INBOX."-prefixed server the children of INBOX are the top level: a source
  // "INBOX/foo" (Dovecot) is what the user sees as Inbox > foo, which such a server
  // spells "INBOX.foo".
  if (first !== undefined && isInbox(first) && d && ns.prefix.toUpperCase() === `INBOX${d}`)
    segs = segments.slice(1);
  return ns.prefix + segs.join(d);
}

/**
 * Characters one name level cannot hold on a server with delimiter `d`: the delimiter
 * itself, and on "."-servers also "/", which Maildir++ stores (Courier, Dovecot's
 * default layout) refuse ("Name must not have '/' characters").
 */
export function reservedChars(d: string | null): string[] {
  if (!d) return [];
  return d === '.' ? ['.', '/'] : [d];
}

/**
 * Make one segment writable on a server with delimiter `d`: reserved characters become
 * their lookalikes, an empty segment becomes "_". Returns the new segment and a
 * problem text when anything changed.
 */
export function sanitizeSegment(
  segment: string,
  d: string | null,
  overrides?: Readonly<Record<string, string>>,
): { segment: string; problem?: string } {
  if (segment === '') {
    return {
      segment: '_',
      problem: 'has an empty name level (two delimiters in a row); written as "_"',
    };
  }
  const found = reservedChars(d).filter((c) => segment.includes(c));
  if (found.length === 0) return { segment };
  let out = segment;
  for (const c of found) out = out.split(c).join(lookalikeFor(c, overrides));
  const what = found.map((c) =>
    c === d
      ? `the destination's hierarchy delimiter "${c}"`
      : `"${c}", which Maildir++ servers refuse`,
  );
  return {
    segment: out,
    problem: `name "${segment}" contains ${what.join(' and ')}; written as ${JSON.stringify(out)} (lookalike characters)`,
  };
}

export interface NameLimits {
  /** bytes of one encoded name level; file-system based servers store a level as a file name */
  maxSegmentBytes: number;
  /** bytes of the whole encoded name */
  maxNameBytes: number;
}

export const DEFAULT_NAME_LIMITS: NameLimits = { maxSegmentBytes: 255, maxNameBytes: 1000 };

/** Reasons a destination may refuse this name, for --dry-run. */
export function nameProblems(
  destination: string,
  segments: readonly string[],
  limits: NameLimits,
): string[] {
  const problems: string[] = [];
  let encoded: string;
  try {
    encoded = encodeMUtf7(destination);
  } catch (err) {
    if (!(err instanceof MUtf7Error)) throw err;
    return [`cannot be written on the wire: ${err.problem}`];
  }
  if (encoded.length > limits.maxNameBytes) {
    problems.push(
      `name is ${encoded.length} bytes on the wire; servers often refuse more than ${limits.maxNameBytes}`,
    );
  }
  for (const seg of segments) {
    const len = encodeMUtf7(seg).length;
    if (len > limits.maxSegmentBytes) {
      problems.push(
        `name level "${seg.slice(0, 40)}..." is ${len} bytes; file-system based servers refuse more than ${limits.maxSegmentBytes}`,
      );
    }
    if (seg === '.' || seg === '..')
      problems.push(`name level "${seg}" is refused by file-system based servers`);
    if (seg.startsWith('~'))
      problems.push(`name level "${seg}" starts with "~", which Dovecot refuses by default`);
    if (seg !== seg.trim())
      problems.push(
        `name level ${JSON.stringify(seg)} begins or ends with a space; some servers trim it`,
      );
  }
  // eslint-disable-next-line no-control-regex -- control characters are exactly what we look for
  if (/[\u0000-\u001f\u007f]/.test(destination)) {
    problems.push('name contains control characters, which most servers refuse');
  }
  return problems;
}

/**
 * Check that the server's wire spelling survives a decode/encode round trip, so the
 * name imapflow sends back is byte-identical. Names sent as UTF-8 (UTF8=ACCEPT, RFC
 * 6855) are taken as they are.
 */
export function wireProblem(path: string, wire: string | undefined): string | undefined {
  // eslint-disable-next-line no-control-regex -- 8-bit means UTF8=ACCEPT, not modified UTF-7
  if (wire === undefined || wire === path || /[^\u0000-\u007f]/.test(wire)) return undefined;
  try {
    const decoded = decodeMUtf7(wire);
    if (decoded !== path)
      return `source spells it ${JSON.stringify(wire)}, which decodes to ${JSON.stringify(decoded)}`;
  } catch (err) {
    if (!(err instanceof MUtf7Error)) throw err;
    return `source name is not valid modified UTF-7 (${err.problem}); it may not be reachable byte-exactly`;
  }
  return undefined;
}
