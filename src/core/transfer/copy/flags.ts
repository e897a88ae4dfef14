/**
 * Which flags a destination folder keeps (RFC 3501 7.1, PERMANENTFLAGS): system flags it
 * lists, keywords it lists, and any keyword when it lists `\*`. `\Recent` is never sent: it
 * belongs to a session, and a client may not set it (RFC 3501 2.3.2). Everything dropped is
 * reported per account, never silently lost.
 */

export const SYSTEM_FLAGS = ['\\Seen', '\\Answered', '\\Flagged', '\\Deleted', '\\Draft'] as const;

const CANONICAL = new Map<string, string>(SYSTEM_FLAGS.map((f) => [f.toLowerCase(), f]));

export interface FlagPolicy {
  /** lower-cased flags the destination keeps; null when it did not say (keep everything) */
  permanent: Set<string> | null;
  keywords: boolean;
}

export function flagPolicy(permanentFlags: readonly string[] | null): FlagPolicy {
  if (permanentFlags === null) return { permanent: null, keywords: true };
  const set = new Set(permanentFlags.map((f) => f.toLowerCase()));
  return { permanent: set, keywords: set.has('\\*') };
}

/** atom-specials and `\` may not appear in a keyword (RFC 3501 9, flag-keyword = atom). */
// eslint-disable-next-line no-control-regex -- CTLs are exactly what an atom may not hold
const BAD_KEYWORD = /[\x00-\x20\x7f-\uffff(){%*"\\\]]/;

export interface FilteredFlags {
  kept: string[];
  /** flags the destination will not keep (to report); \Recent is not listed */
  dropped: string[];
}

export function filterFlags(flags: readonly string[], policy: FlagPolicy): FilteredFlags {
  const kept: string[] = [];
  const dropped: string[] = [];
  const seen = new Set<string>();
  for (const raw of flags) {
    const lower = raw.toLowerCase();
    if (lower === '\\recent' || seen.has(lower)) continue;
    seen.add(lower);
    const system = CANONICAL.get(lower);
    if (system) {
      if (!policy.permanent || policy.permanent.has(lower)) kept.push(system);
      else dropped.push(system);
      continue;
    }
    if (raw.startsWith('\\')) {
      // an extension system flag we cannot create as a keyword
      if (policy.permanent?.has(lower)) kept.push(raw);
      else dropped.push(raw);
      continue;
    }
    if (BAD_KEYWORD.test(raw) || raw.length === 0) {
      dropped.push(raw);
      continue;
    }
    if (!policy.permanent || policy.keywords || policy.permanent.has(lower)) kept.push(raw);
    else dropped.push(raw);
  }
  return { kept, dropped };
}

/** A canonical spelling of a flag set for comparison and storage: sorted, case-folded keys. */
export function flagKey(flags: readonly string[]): string {
  return [
    ...new Set(
      flags
        .filter((f) => f.toLowerCase() !== '\\recent')
        .map((f) => CANONICAL.get(f.toLowerCase()) ?? f),
    ),
  ]
    .sort((a, b) =>
      a.toLowerCase() < b.toLowerCase() ? -1 : a.toLowerCase() > b.toLowerCase() ? 1 : 0,
    )
    .join(' ');
}

export function flagList(key: string): string[] {
  return key ? key.split(' ') : [];
}

/** True when two flag sets are equal for IMAP (flag names are case-insensitive). */
export function sameFlags(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}
