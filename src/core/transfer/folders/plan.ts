/**
 * The folder plan: which source mailbox goes to which destination mailbox. Pure (no
 * I/O), so `migrate --dry-run` and `check --user` show exactly what a run would do.
 *
 * Both sides are described by what NAMESPACE and LIST said (RFC 2342, RFC 3501 6.3.8):
 * names are split into logical segments on the source delimiter with its personal
 * prefix removed, then joined with the destination's delimiter and prefix. Special-use
 * folders (RFC 6154) go to the destination's own folder of that role.
 */
import type {
  FolderPlan,
  FolderPlanEntry,
  ListedMailbox,
  NamespaceInfo,
  SpecialUse,
} from '../types.js';
import {
  DEFAULT_NAME_LIMITS,
  isInbox,
  nameProblems,
  parseName,
  renderName,
  sanitizeSegment,
  wireProblem,
  type NameLimits,
} from './names.js';
import {
  isMappedRole,
  MAPPED_ROLES,
  nameRank,
  specialUseFromFlags,
  specialUseFromName,
  type MappedRole,
} from './special-use.js';

export interface PlanSide {
  namespace: NamespaceInfo;
  mailboxes: ListedMailbox[];
}

export interface PlanOptions {
  /** replacement for a destination delimiter found inside a source name level (see names.ts) */
  delimiterLookalikes?: Record<string, string>;
  limits?: Partial<NameLimits>;
  /** map special-use folders onto the destination's own (default true) */
  mapSpecialUse?: boolean;
}

interface SourceItem {
  mb: ListedMailbox;
  index: number;
  segments: string[];
  noselect: boolean;
  nonExistent: boolean;
  role?: SpecialUse;
  roleFrom?: 'attribute' | 'name';
  problems: string[];
}

const key = (segs: readonly string[]): string => segs.join('\u0000');

function hasFlag(mb: ListedMailbox, flag: string): boolean {
  const f = flag.toLowerCase();
  return mb.flags.some((x) => x.toLowerCase() === f);
}

function effectiveNamespace(side: PlanSide): NamespaceInfo {
  if (side.namespace.delimiter !== null) return side.namespace;
  const listed = side.mailboxes.find((m) => m.delimiter)?.delimiter ?? null;
  return { ...side.namespace, delimiter: listed };
}

function attributeRole(mb: ListedMailbox): SpecialUse | undefined {
  return mb.specialUse ?? specialUseFromFlags(mb.flags);
}

/** Name-based roles only for top-level folders (children of INBOX on prefixed servers parse as top level). */
function nameRole(segments: readonly string[]): MappedRole | undefined {
  const only = segments.length === 1 ? segments[0] : undefined;
  return only === undefined || isInbox(only) ? undefined : specialUseFromName(only);
}

/** The destination's own folder for each role: by attribute first, then by a top-level name. */
function destinationRoles(dst: PlanSide, ns: NamespaceInfo): Map<MappedRole, ListedMailbox> {
  const out = new Map<MappedRole, ListedMailbox>();
  const taken = new Set<ListedMailbox>();
  const live = dst.mailboxes.filter(
    (m) => !hasFlag(m, '\\NonExistent') && !hasFlag(m, '\\Noselect'),
  );
  for (const mb of live) {
    const role = attributeRole(mb);
    if (isMappedRole(role) && !out.has(role)) {
      out.set(role, mb);
      taken.add(mb);
    }
  }
  for (const mb of live) {
    const parsed = parseName(mb.path, ns);
    if (taken.has(mb) || attributeRole(mb) || parsed.kind !== 'mailbox') continue;
    const role = nameRole(parsed.segments);
    if (role && !out.has(role)) {
      out.set(role, mb);
      taken.add(mb);
    }
  }
  return out;
}

/** Keys of every proper ancestor of a listed mailbox, to tell containers from phantoms. */
function parentKeys(src: PlanSide, ns: NamespaceInfo): Set<string> {
  const out = new Set<string>();
  for (const mb of src.mailboxes) {
    const parsed = parseName(mb.path, ns);
    if (parsed.kind !== 'mailbox') continue;
    for (let n = 1; n < parsed.segments.length; n++) out.add(key(parsed.segments.slice(0, n)));
  }
  return out;
}

function collectSource(
  src: PlanSide,
  ns: NamespaceInfo,
  skipped: NonNullable<FolderPlan['skipped']>,
): SourceItem[] {
  const items: SourceItem[] = [];
  const seen = new Set<string>();
  const parents = parentKeys(src, ns);
  src.mailboxes.forEach((mb, index) => {
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

/**
 * One folder per role; the rest are normal folders. An attribute beats a name. Among
 * names, the one spelled like the destination's own folder wins (source "Sent" onto
 * destination "Sent"), then the more common spelling ("Sent" before "Sent Items"),
 * then the first listed, so the outcome does not depend on the server's LIST order.
 */
function assignRoles(items: SourceItem[], dstRoleNames: Map<MappedRole, string>): void {
  const claims = new Map<MappedRole, Array<{ item: SourceItem; from: 'attribute' | 'name' }>>();
  for (const item of items) {
    if (isInbox(item.segments[0] ?? '') && item.segments.length === 1) continue;
    const attr = attributeRole(item.mb);
    if (attr && !isMappedRole(attr)) {
      item.role = attr;
      item.roleFrom = 'attribute';
      item.problems.push(
        `${attr} folder: on many servers it shows messages of other folders, which are then copied again`,
      );
      continue;
    }
    const role = attr ?? (item.noselect ? undefined : nameRole(item.segments));
    if (!role) continue;
    const list = claims.get(role) ?? [];
    list.push({ item, from: attr ? 'attribute' : 'name' });
    claims.set(role, list);
  }
  for (const role of MAPPED_ROLES) {
    const list = claims.get(role);
    if (!list) continue;
    const leaf = (c: { item: SourceItem }): string =>
      c.item.segments[c.item.segments.length - 1] ?? '';
    const dstName = dstRoleNames.get(role)?.toLowerCase();
    const rank = (c: { item: SourceItem }): number =>
      leaf(c).toLowerCase() === dstName ? -1 : nameRank(role, leaf(c));
    const byName = list
      .filter((c) => c.from === 'name')
      .sort((a, b) => rank(a) - rank(b) || a.item.index - b.item.index);
    const winner = list.find((c) => c.from === 'attribute') ?? byName[0];
    if (!winner) continue;
    winner.item.role = role;
    winner.item.roleFrom = winner.from;
    for (const c of list) {
      if (c === winner) continue;
      c.item.problems.push(
        `also looks like a ${role} folder ("${winner.item.mb.path}" has the role); copied as a normal folder`,
      );
    }
  }
}

export function planFolders(src: PlanSide, dst: PlanSide, opts: PlanOptions = {}): FolderPlan {
  const srcNs = effectiveNamespace(src);
  const dstNs = effectiveNamespace(dst);
  const limits: NameLimits = { ...DEFAULT_NAME_LIMITS, ...opts.limits };
  const skipped: NonNullable<FolderPlan['skipped']> = [];
  const items = collectSource(src, srcNs, skipped);
  const dstRoles =
    opts.mapSpecialUse === false
      ? new Map<MappedRole, ListedMailbox>()
      : destinationRoles(dst, dstNs);
  if (opts.mapSpecialUse !== false) {
    const leafNames = new Map<MappedRole, string>();
    for (const [role, mb] of dstRoles) {
      const parsed = parseName(mb.path, dstNs);
      if (parsed.kind === 'mailbox')
        leafNames.set(role, parsed.segments[parsed.segments.length - 1] ?? '');
    }
    assignRoles(items, leafNames);
  }
  const dstLive = new Set(
    dst.mailboxes.filter((m) => !hasFlag(m, '\\NonExistent')).map((m) => m.path),
  );

  const destSegs = new Map<string, string[]>();
  const used = new Set<string>(['INBOX']);
  const roleTarget = (item: SourceItem): ListedMailbox | undefined =>
    isMappedRole(item.role) ? dstRoles.get(item.role) : undefined;

  // Reserve INBOX and the destination's role folders first, so a normal folder that
  // happens to share the name is the one renamed, never the role folder.
  for (const item of items) {
    const target = roleTarget(item);
    if (target) used.add(target.path);
  }

  const ordered = [...items].sort(
    (a, b) => a.segments.length - b.segments.length || a.index - b.index,
  );
  const entries: Array<FolderPlanEntry & { order: number }> = [];
  for (const item of ordered) {
    const problems = [...item.problems];
    let destination: string;
    let segs: string[];
    const target = roleTarget(item);
    if (item.segments.length === 1 && isInbox(item.segments[0] ?? '')) {
      destination = 'INBOX';
      segs = ['INBOX'];
    } else if (target) {
      destination = target.path;
      const parsed = parseName(target.path, dstNs);
      segs = parsed.kind === 'mailbox' ? parsed.segments : [target.path];
    } else {
      const parent = item.segments.slice(0, -1);
      // A parent the source did not list (servers may omit implicit parents) is mapped
      // the same way level by level.
      let parentDest = destSegs.get(key(parent));
      if (!parentDest) {
        parentDest = parent.map((s, i) => {
          if (i === 0 && isInbox(s)) return 'INBOX';
          const r = sanitizeSegment(s, dstNs.delimiter, opts.delimiterLookalikes);
          if (r.problem) problems.push(r.problem);
          return r.segment;
        });
      }
      const leafSrc = item.segments[item.segments.length - 1] ?? '';
      const leaf = sanitizeSegment(leafSrc, dstNs.delimiter, opts.delimiterLookalikes);
      if (leaf.problem) problems.push(leaf.problem);
      segs = [...parentDest, leaf.segment];
      destination = renderName(segs, dstNs);
      if (used.has(destination)) {
        const taken = destination;
        for (let n = 2; used.has(destination); n++) {
          segs = [...parentDest, `${leaf.segment} (${n})`];
          destination = renderName(segs, dstNs);
        }
        problems.push(
          `would land in "${taken}" like another folder after mapping; written as ${JSON.stringify(destination)}`,
        );
      }
      used.add(destination);
    }
    destSegs.set(key(item.segments), segs);
    if (!dstNs.delimiter && item.segments.length > 1) {
      problems.push(
        'the destination has no hierarchy (no delimiter); the levels are joined into one name',
      );
    }
    problems.push(...nameProblems(destination, segs, limits));
    const entry: FolderPlanEntry & { order: number } = {
      source: item.mb.path,
      segments: item.segments,
      destination,
      noselect: item.noselect,
      subscribed: item.mb.subscribed,
      existsOnDestination: isInbox(destination) || dstLive.has(destination),
      problems,
      order: entries.length,
    };
    if (item.nonExistent) entry.nonExistent = true;
    if (item.role) {
      entry.specialUse = item.role;
      if (item.roleFrom) entry.specialUseFrom = item.roleFrom;
    }
    entries.push(entry);
  }

  const depth = (e: FolderPlanEntry): number => {
    const parsed = parseName(e.destination, dstNs);
    return parsed.kind === 'mailbox' ? parsed.segments.length : 0;
  };
  entries.sort((a, b) => depth(a) - depth(b) || a.order - b.order);
  const plan: FolderPlan = {
    source: srcNs,
    destination: dstNs,
    entries: entries.map(({ order: _order, ...e }) => e),
  };
  if (skipped.length) plan.skipped = skipped;
  return plan;
}
