/**
 * Read one server's folders through imapflow: NAMESPACE (RFC 2342) as imapflow keeps
 * it after login, and LIST with subscriptions (RETURN (SUBSCRIBED) on LIST-EXTENDED
 * servers, RFC 5258, else LSUB). imapflow decodes modified UTF-7 names for us; the
 * wire spelling is kept beside it so the planner can check the two agree.
 */
import type { ImapFlow, ListResponse } from 'imapflow';
import type { ListedMailbox, NamespaceInfo } from '../types.js';
import { specialUseFromFlags } from './special-use.js';

export interface ListedSide {
  namespace: NamespaceInfo;
  mailboxes: ListedMailbox[];
}

/** The personal namespace (first one), plus the other-users and shared prefixes. */
export function namespaceOf(client: ImapFlow): NamespaceInfo {
  const ns = client.namespace;
  const others = client.namespaces
    ? [...(client.namespaces.other || []), ...(client.namespaces.shared || [])]
        .map((n) => n.prefix)
        .filter(Boolean)
    : [];
  const info: NamespaceInfo = { prefix: ns?.prefix ?? '', delimiter: ns?.delimiter ?? null };
  if (others.length) info.otherPrefixes = others;
  return info;
}

export function toListedMailbox(entry: ListResponse): ListedMailbox {
  const flags = [...entry.flags];
  const out: ListedMailbox = {
    path: entry.path,
    wire: entry.pathAsListed,
    delimiter: entry.delimiter || null,
    flags,
    // imapflow leaves the field out (undefined) for unsubscribed mailboxes
    subscribed: entry.subscribed === true,
  };
  // Only what the server said (SPECIAL-USE/XLIST attributes); imapflow's own name
  // guesses are replaced by the planner's, which also know localized names.
  const role = specialUseFromFlags(flags);
  if (role) out.specialUse = role;
  return out;
}

export async function listSide(client: ImapFlow): Promise<ListedSide> {
  const listed = await client.list();
  const namespace = namespaceOf(client);
  if (namespace.delimiter === null) {
    const d = listed.find((m) => m.delimiter)?.delimiter;
    if (d) namespace.delimiter = d;
  }
  return { namespace, mailboxes: listed.map(toListedMailbox) };
}
