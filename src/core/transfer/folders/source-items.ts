/**
 * The first phase of the folder plan: the source's mailboxes as items to place, with their
 * name levels, leaving out (with the reason) what is not the user's own or is nothing at all.
 */
import type { FolderPlan, ListedMailbox, NamespaceInfo, SpecialUse } from '../types.js';
import { parseName, wireProblem } from './names.js';

/** A source folder to place on the destination. */
export interface SourceItem {
  mb: ListedMailbox;
  /** position in the source's LIST: the tie-breaker that keeps the plan stable */
  index: number;
  segments: string[];
  noselect: boolean;
  nonExistent: boolean;
  role?: SpecialUse;
  roleFrom?: 'attribute' | 'name';
  problems: string[];
}

/** Name levels as one Map key. */
export const key = (segs: readonly string[]): string => segs.join('\u0000');

export function hasFlag(mb: ListedMailbox, flag: string): boolean {
  const f = flag.toLowerCase();
  return mb.flags.some((x) => x.toLowerCase() === f);
}

/** Keys of every proper ancestor of a listed mailbox, to tell containers from phantoms. */
function parentKeys(mailboxes: readonly ListedMailbox[], ns: NamespaceInfo): Set<string> {
  const out = new Set<string>();
  for (const mb of mailboxes) {
    const parsed = parseName(mb.path, ns);
    if (parsed.kind !== 'mailbox') continue;
    for (let n = 1; n < parsed.segments.length; n++) out.add(key(parsed.segments.slice(0, n)));
  }
  return out;
}

/** The source's own folders, once each; what is left out goes to `skipped` with the reason. */
export function collectSource(
  mailboxes: readonly ListedMailbox[],
  ns: NamespaceInfo,
  skipped: NonNullable<FolderPlan['skipped']>,
): SourceItem[] {
  const items: SourceItem[] = [];
  const seen = new Set<string>();
  const parents = parentKeys(mailboxes, ns);
  mailboxes.forEach((mb, index) => {
    const nonExistent = hasFlag(mb, '\\NonExistent');
    const parsed = parseName(mb.path, ns);
    if (parsed.kind === 'other-namespace') {
      skipped.push({
        source: mb.path,
        reason: `in the other-users/shared namespace "${parsed.prefix}", not the user's own`,
      });
      return;
    }
    if (parsed.kind === 'outside-prefix') {
      skipped.push({
        source: mb.path,
        reason: `outside the personal namespace prefix "${ns.prefix}"`,
      });
      return;
    }
    if (parsed.kind === 'root') return;
    // Maildir++ servers list the implicit parent of "a.b" as "a" with \NonExistent:
    // a container worth keeping. Without children and unsubscribed it is nothing.
    if (nonExistent && !mb.subscribed && !parents.has(key(parsed.segments))) {
      skipped.push({
        source: mb.path,
        reason: 'listed as \\NonExistent, without children and not subscribed (RFC 5258)',
      });
      return;
    }
    if (seen.has(key(parsed.segments))) {
      skipped.push({ source: mb.path, reason: 'listed twice' });
      return;
    }
    seen.add(key(parsed.segments));
    const problems: string[] = [];
    const wp = wireProblem(mb.path, mb.wire);
    if (wp) problems.push(wp);
    if (nonExistent && !parents.has(key(parsed.segments))) {
      problems.push(
        'exists on the source only as a subscription (\\NonExistent); only the subscription is copied',
      );
    }
    items.push({
      mb,
      index,
      segments: parsed.segments,
      noselect: nonExistent || hasFlag(mb, '\\Noselect'),
      nonExistent,
      problems,
    });
  });
  return items;
}
