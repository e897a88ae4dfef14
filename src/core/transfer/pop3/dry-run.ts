/**
 * `migrate --dry-run` and `check --user` over POP3: counts and sizes from LIST, what earlier
 * runs copied from the recorded UIDLs, messages over the destination's APPENDLIMIT. The
 * source is only read (LIST, UIDL, QUIT); nothing is written anywhere.
 */
import type { Config } from '../../config/types.js';
import type { StateStore } from '../../state/types.js';
import {
  etaSeconds,
  overLimitProblem,
  type DryRunRate,
  type DryRunResult,
} from '../dry-run-result.js';
import { connectPop3, pop3Options } from './connect.js';
import { listInbox, type InboxListing } from './inbox.js';

export const POP3_NOTE =
  'the source is read over POP3 (no source.imap, or source.useImap is false): only the inbox is copied, without flags (every message arrives unread)';

export interface Pop3DryRunDeps {
  config: Config;
  store?: StateStore;
  rate: DryRunRate;
  /** what the destination said (dry-run.ts reads it the same way for IMAP) */
  destination: { appendLimit?: number; inboxExists: boolean; problems: string[] };
}

export async function dryRunOverPop3(
  req: { address: string; password: string },
  deps: Pop3DryRunDeps,
): Promise<DryRunResult> {
  const pop = await connectPop3(pop3Options(deps.config, req));
  let listing: InboxListing;
  try {
    listing = await listInbox(pop);
  } finally {
    await pop.quit().catch(() => pop.close());
  }
  const { appendLimit } = deps.destination;
  const recorded = (await deps.store?.get(req.address))?.pop3Uidls ?? {};
  const problems = [POP3_NOTE, ...deps.destination.problems];
  for (const d of listing.duplicates)
    problems.push(
      `UIDL "${d.uidl}" is used by more than one message on the source; only the first is copied`,
    );
  let bytes = 0;
  let overLimit = 0;
  for (const size of listing.sizes.values()) {
    bytes += size;
    if (appendLimit !== undefined && size > appendLimit) overLimit++;
  }
  let already = 0;
  let toCopyBytes = 0;
  for (const [uidl, n] of listing.unique) {
    if (uidl in recorded) already++;
    else toCopyBytes += listing.sizes.get(n) ?? 0;
  }
  const messages = listing.sizes.size;
  const toCopy = listing.unique.size - already;
  return {
    address: req.address,
    folders: [
      {
        source: 'INBOX',
        destination: 'INBOX',
        noselect: false,
        existsOnDestination: deps.destination.inboxExists,
        messages,
        bytes,
        alreadyCopied: already,
        overLimit,
        problems: overLimit ? [overLimitProblem(overLimit, appendLimit)] : [],
      },
    ],
    skippedFolders: [],
    totals: { folders: 1, messages, bytes, toCopy, toCopyBytes },
    appendLimit,
    etaSeconds: etaSeconds(toCopy, toCopyBytes, deps.rate),
    assumedRate: deps.rate,
    problems,
  };
}
