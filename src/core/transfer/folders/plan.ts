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
import { collectSource, hasFlag, key, type SourceItem } from './source-items.js';

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
  const skipped: NonNullable<FolderPlan['skipped']> = [];
  const items = collectSource(src.mailboxes, srcNs, skipped);
  const roles =
    opts.mapSpecialUse === false
      ? new Map<MappedRole, ListedMailbox>()
      : destinationRoles(dst, dstNs);
  if (opts.mapSpecialUse !== false) assignRoles(items, roleLeafNames(roles, dstNs));
  const entries = placeAll(items, {
    dstNs,
    opts,
    roles,
    limits: { ...DEFAULT_NAME_LIMITS, ...opts.limits },
    dstLive: new Set(dst.mailboxes.filter((m) => !hasFlag(m, '\\NonExistent')).map((m) => m.path)),
    used: new Set<string>(['INBOX']),
    placed: new Map(),
  });
  const plan: FolderPlan = { source: srcNs, destination: dstNs, entries };
  if (skipped.length) plan.skipped = skipped;
  return plan;
}

/** The last name level of each of the destination's role folders ("Sent Items"). */
function roleLeafNames(
  roles: Map<MappedRole, ListedMailbox>,
  dstNs: NamespaceInfo,
): Map<MappedRole, string> {
  const out = new Map<MappedRole, string>();
  for (const [role, mb] of roles) {
    const parsed = parseName(mb.path, dstNs);
    if (parsed.kind === 'mailbox') out.set(role, parsed.segments[parsed.segments.length - 1] ?? '');
  }
  return out;
}

/** What placing the source folders on the destination needs, and what it has placed. */
interface Placement {
  dstNs: NamespaceInfo;
  opts: PlanOptions;
  roles: Map<MappedRole, ListedMailbox>;
  limits: NameLimits;
  /** mailboxes the destination has (not \NonExistent) */
  dstLive: Set<string>;
  /** destination names given so far */
  used: Set<string>;
  /** destination name levels of each source folder placed so far, by key of its source levels */
  placed: Map<string, string[]>;
}

type OrderedEntry = FolderPlanEntry & { order: number };

/** Entries for every source folder, parents before children (by destination depth). */
function placeAll(items: SourceItem[], ctx: Placement): FolderPlanEntry[] {
  // Reserve INBOX and the destination's role folders first, so a normal folder that
  // happens to share the name is the one renamed, never the role folder.
  for (const item of items) {
    const target = roleTarget(item, ctx.roles);
    if (target) ctx.used.add(target.path);
  }
  const ordered = [...items].sort(
    (a, b) => a.segments.length - b.segments.length || a.index - b.index,
  );
  const entries: OrderedEntry[] = [];
  for (const item of ordered) {
    const problems = [...item.problems];
    const { destination, segs } = placeItem(item, ctx, problems);
    ctx.placed.set(key(item.segments), segs);
    entries.push(planEntry(item, destination, segs, problems, entries.length, ctx));
  }
  const depth = (e: FolderPlanEntry): number => {
    const parsed = parseName(e.destination, ctx.dstNs);
    return parsed.kind === 'mailbox' ? parsed.segments.length : 0;
  };
  entries.sort((a, b) => depth(a) - depth(b) || a.order - b.order);
  return entries.map(({ order: _order, ...e }) => e);
}

function roleTarget(
  item: SourceItem,
  roles: Map<MappedRole, ListedMailbox>,
): ListedMailbox | undefined {
  return isMappedRole(item.role) ? roles.get(item.role) : undefined;
}

/** The destination name of one source folder: INBOX, the destination's role folder, or mapped. */
function placeItem(
  item: SourceItem,
  ctx: Placement,
  problems: string[],
): { destination: string; segs: string[] } {
  if (item.segments.length === 1 && isInbox(item.segments[0] ?? ''))
    return { destination: 'INBOX', segs: ['INBOX'] };
  const target = roleTarget(item, ctx.roles);
  if (target) {
    const parsed = parseName(target.path, ctx.dstNs);
    return {
      destination: target.path,
      segs: parsed.kind === 'mailbox' ? parsed.segments : [target.path],
    };
  }
  return mappedName(item, ctx, problems);
}

/**
 * A normal folder: its levels joined with the destination's delimiter and prefix, each made
 * safe for the destination, and numbered when that name is already given.
 */
function mappedName(
  item: SourceItem,
  ctx: Placement,
  problems: string[],
): { destination: string; segs: string[] } {
  const { dstNs, opts } = ctx;
  const parent = item.segments.slice(0, -1);
  // A parent the source did not list (servers may omit implicit parents) is mapped
  // the same way level by level.
  const parentDest =
    ctx.placed.get(key(parent)) ??
    parent.map((s, i) => {
      if (i === 0 && isInbox(s)) return 'INBOX';
      const r = sanitizeSegment(s, dstNs.delimiter, opts.delimiterLookalikes);
      if (r.problem) problems.push(r.problem);
      return r.segment;
    });
  const leafSrc = item.segments[item.segments.length - 1] ?? '';
  const leaf = sanitizeSegment(leafSrc, dstNs.delimiter, opts.delimiterLookalikes);
  if (leaf.problem) problems.push(leaf.problem);
  let segs = [...parentDest, leaf.segment];
  let destination = renderName(segs, dstNs);
  if (ctx.used.has(destination)) {
    const taken = destination;
    for (let n = 2; ctx.used.has(destination); n++) {
      segs = [...parentDest, `${leaf.segment} (${n})`];
      destination = renderName(segs, dstNs);
    }
    problems.push(
      `would land in "${taken}" like another folder after mapping; written as ${JSON.stringify(destination)}`,
    );
  }
  ctx.used.add(destination);
  return { destination, segs };
}

function planEntry(
  item: SourceItem,
  destination: string,
  segs: string[],
  problems: string[],
  order: number,
  ctx: Placement,
): OrderedEntry {
  if (!ctx.dstNs.delimiter && item.segments.length > 1) {
    problems.push(
      'the destination has no hierarchy (no delimiter); the levels are joined into one name',
    );
  }
  problems.push(...nameProblems(destination, segs, ctx.limits));
  const entry: OrderedEntry = {
    source: item.mb.path,
    segments: item.segments,
    destination,
    noselect: item.noselect,
    subscribed: item.mb.subscribed,
    existsOnDestination: isInbox(destination) || ctx.dstLive.has(destination),
    problems,
    order,
  };
  if (item.nonExistent) entry.nonExistent = true;
  if (item.role) {
    entry.specialUse = item.role;
    if (item.roleFrom) entry.specialUseFrom = item.roleFrom;
  }
  return entry;
}
