/**
 * Shared types of the copy engine. The folder planner (folders/) produces a FolderPlan;
 * the message copier (copy/) consumes it. Both sides are described by what LIST and
 * NAMESPACE said, so no server's layout is assumed.
 */
export type SpecialUse =
  '\\Sent' | '\\Drafts' | '\\Trash' | '\\Junk' | '\\Archive' | '\\All' | '\\Flagged';

/** A mailbox as one server's LIST reported it. */
export interface ListedMailbox {
  /**
   * the name as Unicode, as imapflow's `list()` reports it and as imapflow's commands take it
   * (imapflow encodes it to modified UTF-7 on the wire, RFC 3501 5.1.3)
   */
  path: string;
  /** the name exactly as the server spelled it on the wire (imapflow's `pathAsListed`), when known */
  wire?: string;
  /** hierarchy delimiter reported for it (null for a flat server) */
  delimiter: string | null;
  flags: string[];
  specialUse?: SpecialUse;
  subscribed: boolean;
}

/** One server's namespace, from NAMESPACE (RFC 2342) or inferred from LIST. */
export interface NamespaceInfo {
  prefix: string;
  delimiter: string | null;
  /** prefixes of the other-users and shared namespaces: mailboxes under them are not the user's own and are not copied */
  otherPrefixes?: string[];
}

export interface FolderPlanEntry {
  /** source mailbox name as the source spells it */
  source: string;
  /** logical path: the name split on the source delimiter with the namespace prefix removed (INBOX stays "INBOX") */
  segments: string[];
  /** destination mailbox name as the destination spells it */
  destination: string;
  /** container only: create on the destination, never SELECT/EXAMINE on either side */
  noselect: boolean;
  /**
   * listed as \NonExistent (RFC 5258): an implicit parent of other folders, or a
   * subscription without a mailbox. Never created by itself (its children create it);
   * only its subscription is copied. Implies noselect.
   */
  nonExistent?: boolean;
  specialUse?: SpecialUse;
  /** how the special-use role was found */
  specialUseFrom?: 'attribute' | 'name';
  subscribed: boolean;
  /** true when the destination already has this mailbox */
  existsOnDestination: boolean;
  /** names or characters the destination may refuse, for --dry-run */
  problems: string[];
}

export interface FolderPlan {
  source: NamespaceInfo;
  destination: NamespaceInfo;
  /** parents before children (by destination depth) */
  entries: FolderPlanEntry[];
  /** source mailboxes left out on purpose (other namespaces, phantom entries), with the reason */
  skipped?: Array<{ source: string; reason: string }>;
}

/** Final state of one message in the ledger. */
export type LedgerOutcome =
  | 'copied'
  | 'skipped'
  | 'failed'
  | 'matched'
  | 'expunged'
  | 'flags'
  /** the copy was deleted on the destination after the account was migrated: left so */
  | 'deleted';

export interface LedgerEntry {
  ts?: string;
  account: string;
  folder: string;
  /** the source folder's UIDVALIDITY; 0 for a POP3 source, which has none */
  uidValidity: number;
  /** the source UID; for a POP3 source the message number in that run's session */
  uid: number;
  /** a POP3 source's unique id of the message (RFC 1939 UIDL): what identifies it across runs */
  uidl?: string;
  outcome: LedgerOutcome;
  destUid?: number;
  size?: number;
  sha256?: string;
  /** why skipped/failed, with the server's own text */
  reason?: string;
}
