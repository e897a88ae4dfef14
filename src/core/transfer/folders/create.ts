/**
 * Create the planned folders on the destination and copy the subscriptions.
 * Idempotent: what exists is left alone, so a re-run after a crash only finishes
 * the job.
 *
 * - Parents before children. RFC 3501 6.3.3 lets a server create missing superiors
 *   itself, and Dovecot/Cyrus do, so a \Noselect container that has children is left
 *   to them; one that is still missing afterwards (or has no children) is created
 *   with a trailing delimiter, the RFC's way to declare "this will hold children"
 *   (Dovecot's fs layout then makes a real \Noselect directory; Maildir++ servers make
 *   an ordinary empty folder). Containers are never SELECTed.
 * - \NonExistent entries are never created: only their subscription is copied.
 * - imapflow's mailboxCreate() also SUBSCRIBEs; the subscription pass afterwards sets
 *   every folder to the source's state (the destination's own special-use folders
 *   are only ever subscribed, never unsubscribed).
 */
import type { ImapFlow } from 'imapflow';
import type { FolderPlan, FolderPlanEntry } from '../types.js';
import { listSide } from './list.js';
import { isInbox } from './names.js';
import { isMappedRole } from './special-use.js';

export interface CreateFoldersResult {
  /** destination names created by this run */
  created: string[];
  /** destination names that were already there */
  existing: string[];
  subscribed: string[];
  unsubscribed: string[];
  /** CREATE or (UN)SUBSCRIBE refused, with the server's text; the rest went on */
  failed: Array<{
    source: string;
    destination: string;
    action: 'create' | 'subscribe' | 'unsubscribe';
    reason: string;
  }>;
}

function serverText(err: unknown): string {
  const e = err as { responseText?: string; message?: string };
  return e.responseText || e.message || String(err);
}

interface DestinationState {
  live: Set<string>;
  subscribed: Set<string>;
}

async function readDestination(client: ImapFlow): Promise<DestinationState> {
  const side = await listSide(client);
  const live = new Set<string>();
  const subscribed = new Set<string>();
  for (const m of side.mailboxes) {
    if (!m.flags.some((f) => f.toLowerCase() === '\\nonexistent')) live.add(m.path);
    if (m.subscribed) subscribed.add(m.path);
  }
  return { live, subscribed };
}

export async function createFolders(
  client: ImapFlow,
  plan: FolderPlan,
): Promise<CreateFoldersResult> {
  const res: CreateFoldersResult = {
    created: [],
    existing: [],
    subscribed: [],
    unsubscribed: [],
    failed: [],
  };
  const delim = plan.destination.delimiter;
  const depth = (e: FolderPlanEntry): number => (delim ? e.destination.split(delim).length : 1);
  const entries = [...plan.entries]
    .filter((e) => !isInbox(e.destination))
    .sort((a, b) => depth(a) - depth(b));
  const parents = new Set<string>();
  if (delim) {
    for (const e of entries) {
      const parts = e.destination.split(delim);
      for (let n = 1; n < parts.length; n++) parents.add(parts.slice(0, n).join(delim));
    }
  }
  const hasChildren = (e: FolderPlanEntry): boolean => parents.has(e.destination);

  let state = await readDestination(client);

  const create = async (e: FolderPlanEntry, container: boolean): Promise<void> => {
    const names = container && delim ? [e.destination + delim, e.destination] : [e.destination];
    for (const name of names) {
      try {
        const r = await client.mailboxCreate(name);
        (r.created ? res.created : res.existing).push(e.destination);
        // undo imapflow's automatic SUBSCRIBE of the spelling with the trailing delimiter
        // (Dovecot ignores it; other servers may store it as a subscription of its own)
        if (name !== e.destination) await client.mailboxUnsubscribe(name);
        state.live.add(e.destination);
        return;
      } catch (err) {
        if (name === names[names.length - 1]) {
          res.failed.push({
            source: e.source,
            destination: e.destination,
            action: 'create',
            reason: serverText(err),
          });
        }
      }
    }
  };

  const deferred: FolderPlanEntry[] = [];
  for (const e of entries) {
    if (state.live.has(e.destination)) {
      res.existing.push(e.destination);
      continue;
    }
    if (e.nonExistent) continue;
    if (e.noselect && hasChildren(e)) {
      deferred.push(e);
      continue;
    }
    await create(e, e.noselect);
  }
  state = await readDestination(client);
  let changed = false;
  for (const e of deferred) {
    if (state.live.has(e.destination)) continue;
    await create(e, true);
    changed = true;
  }
  if (changed) state = await readDestination(client);

  for (const e of entries) {
    const have = state.subscribed.has(e.destination);
    if (e.subscribed && !have) {
      if (await client.mailboxSubscribe(e.destination)) res.subscribed.push(e.destination);
      else
        res.failed.push({
          source: e.source,
          destination: e.destination,
          action: 'subscribe',
          reason: 'SUBSCRIBE refused',
        });
    } else if (!e.subscribed && have && !isMappedRole(e.specialUse)) {
      if (await client.mailboxUnsubscribe(e.destination)) res.unsubscribed.push(e.destination);
      else
        res.failed.push({
          source: e.source,
          destination: e.destination,
          action: 'unsubscribe',
          reason: 'UNSUBSCRIBE refused',
        });
    }
  }
  return res;
}
