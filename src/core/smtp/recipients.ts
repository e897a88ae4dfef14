/**
 * Where mail for one recipient goes (port 25), and whether it may join the transaction
 * that is open. Everything here is decided from data: the configured domains, the
 * account's state (read by the caller) and decide(); no sockets.
 *
 *   foreign domain, address literal, or sender-routed local part -> 554 5.7.1 (never an open relay)
 *   migrated                  -> the destination's delivery endpoint (SMTP or LMTP)
 *   transferring              -> 450 4.2.1 "mailbox is being moved, try again later"
 *   anything else, also never seen -> the source, which is asked during RCPT, so its own
 *                                550 for an unknown user reaches the sender at once
 *
 * Mixed transactions. One SMTP transaction gets one reply to its end of DATA. When its
 * recipients need two backends, fanning out (Dovecot's LMTP proxy) cannot promise
 * "exactly once": if the source accepts the message and the destination then fails, the
 * gateway must either answer 4xx (the sender retries everyone: the source's recipients
 * get it twice) or 250 (the destination's copy is lost, unless the gateway queues it,
 * and it stores nothing). So the first accepted recipient fixes the transaction's
 * backend and recipients for the other one get 452 4.5.3 (RFC 5321 4.5.3.1.10): the
 * sender delivers them in a new transaction, which is what Haraka does. The same
 * reasoning caps an LMTP transaction at one recipient: LMTP answers the end of DATA once
 * per recipient (RFC 2033 4.2) and a partial success could not be told to an SMTP client
 * without losing or doubling a copy.
 *
 * Submission (routeSubmissionRecipient). A user who has not moved sends through the
 * source's submission service; the source's MTA delivers its local recipients itself,
 * into their mailboxes at the source, so a colleague who has already moved would never
 * see that mail (and a moved user's mail to a colleague still at the source would go to
 * the destination's MTA, which has no mailbox for them yet). Port 25's answer, 452 for
 * the minority, does not work here: a mail client is no MTA, it does not send deferred
 * recipients again in a new transaction, it fails the whole send (Thunderbird, curl) or
 * drops them (nodemailer's "rejected"). So a submitted message goes out on up to two
 * legs: local recipients whose mailbox is on the other side straight to that side's
 * delivery endpoint, as port 25 would deliver them, and everything else (other domains,
 * local recipients on the home side) through the home's submission service, which keeps
 * deciding what the user may relay and sends as before. An account being moved gets
 * 450 4.2.1 as on port 25: its mailbox is locked for the copy.
 *
 * Two legs cannot give "exactly once" without a queue, which the gateway does not have:
 * it streams the message to both and ends the home leg first, the direct leg only after
 * the home accepted (relay.ts), so the home's own checks (sender, content) still decide
 * for the whole message and nothing is delivered when the home refuses. If the direct leg
 * then fails (a crash, a full mailbox at the end of data), the client gets that refusal
 * although the home leg's recipients have their copy; sending again gives them a second
 * one. Doubling in that rare case, with the refusal logged, is chosen over what happened
 * before: every such message silently in the wrong mailbox. Aliases, lists and forwards
 * the source expands itself still deliver into its old mailboxes; the gateway never sees
 * those recipients, so only the source's own configuration (a transport per moved user
 * to the gateway) or a last sync of the old mailbox can catch them.
 */
import type { Outcome } from '../replies.js';
import { decide, type RouteReason } from '../routing/decide.js';
import type { AccountState } from '../state/types.js';

export type Side = 'source' | 'destination';

export type RecipientRoute =
  | { kind: 'refuse'; outcome: Outcome; detail: string }
  | { kind: 'relay'; side: Side; reason: RouteReason; account: string };

export interface RouteContext {
  /** the configured mail domains, any case */
  domains: readonly string[];
  /** which delivery endpoints the config has */
  hasSource: boolean;
  hasDestination: boolean;
  /** the account's state; may throw when the store cannot be read */
  stateOf(account: string): AccountState | undefined;
}

/** Local part and domain of an address; the domain lower-cased. */
export function splitAddress(address: string): { local: string; domain: string } | undefined {
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return undefined;
  return {
    local: address.slice(0, at),
    domain: address
      .slice(at + 1)
      .toLowerCase()
      .replace(/\.$/, ''),
  };
}

export function isLocalDomain(domain: string, domains: readonly string[]): boolean {
  const d = domain.toLowerCase();
  return domains.some((x) => x.toLowerCase() === d);
}

/**
 * The store keys an address may be recorded under: the address itself, and for the first
 * (default) domain also the bare local part, which is how a user who logs in as "alice"
 * is recorded.
 */
export function accountKeys(address: string, domains: readonly string[]): string[] {
  const a = splitAddress(address);
  const full = address.toLowerCase();
  if (!a) return [full];
  const first = domains[0]?.toLowerCase();
  return first !== undefined && a.domain === first ? [full, a.local.toLowerCase()] : [full];
}

/**
 * Sender-specified routing in a local part ("user%other@local", "other!user@local",
 * '@' in a quoted local part) could make the backend relay onwards; Postfix refuses it
 * from untrusted clients (allow_untrusted_routing = no) and so does the gateway.
 */
function routedLocalPart(local: string): boolean {
  return /[%!@]/.test(local);
}

export function routeRecipient(address: string, ctx: RouteContext): RecipientRoute {
  const a = splitAddress(address);
  if (!a || !isLocalDomain(a.domain, ctx.domains)) {
    return {
      kind: 'refuse',
      outcome: 'relay-denied',
      detail: `${a?.domain ?? address} is not a local domain`,
    };
  }
  if (routedLocalPart(a.local)) {
    return {
      kind: 'refuse',
      outcome: 'relay-denied',
      detail: 'sender-specified routing in the local part',
    };
  }
  const keys = accountKeys(address, ctx.domains);
  let account = keys[0]!;
  let state: AccountState | undefined;
  for (const k of keys) {
    state = ctx.stateOf(k);
    if (state !== undefined) {
      account = k;
      break;
    }
  }
  const route = decide({
    protocol: 'smtp',
    purpose: 'delivery',
    state,
    strategy: 'proxy',
    source: { smtp: ctx.hasSource },
    destination: { smtp: ctx.hasDestination },
    canTransfer: false,
  });
  if (route.target === 'refuse')
    return { kind: 'refuse', outcome: route.outcome, detail: `account is ${route.reason}` };
  return { kind: 'relay', side: route.target, reason: route.reason, account };
}

export interface OpenTransaction {
  /** the backend the transaction's accepted recipients go to; undefined before the first */
  side: Side | undefined;
  /** recipients the backend accepted so far */
  accepted: number;
  /** that backend speaks LMTP */
  lmtp: boolean;
}

/**
 * May a recipient for `side` join the transaction? 'join', or 'defer' (452 4.5.3: send
 * it again in a new transaction), or 'switch' (nobody was accepted yet: drop the open
 * backend and use the other).
 */
export function joinTransaction(tx: OpenTransaction, side: Side): 'join' | 'defer' | 'switch' {
  if (tx.side === undefined) return 'join';
  if (tx.side !== side) return tx.accepted === 0 ? 'switch' : 'defer';
  return tx.lmtp && tx.accepted >= 1 ? 'defer' : 'join';
}

export type SubmissionRoute =
  | { kind: 'refuse'; outcome: Outcome; detail: string }
  /** through the user's home submission service (its relay rules apply) */
  | { kind: 'home' }
  /** straight to the delivery endpoint of the side that holds the mailbox now */
  | { kind: 'direct'; side: Side; reason: RouteReason; account: string };

/**
 * Where one recipient of an authenticated submission goes, the user's home being `home`
 * (see the top of this file). Addresses outside the local domains, and local ones the
 * home holds, go through the home; a local address whose mailbox is on the other side
 * goes straight there; one being moved is refused for now.
 */
export function routeSubmissionRecipient(
  address: string,
  home: Side,
  ctx: RouteContext,
): SubmissionRoute {
  const a = splitAddress(address);
  if (!a || !isLocalDomain(a.domain, ctx.domains) || routedLocalPart(a.local))
    return { kind: 'home' };
  // The home's own submission service delivers to its side: no delivery endpoint needed there.
  const route = routeRecipient(address, {
    ...ctx,
    hasSource: ctx.hasSource || home === 'source',
    hasDestination: ctx.hasDestination || home === 'destination',
  });
  if (route.kind === 'refuse') return route;
  if (route.side === home) return { kind: 'home' };
  return { kind: 'direct', side: route.side, reason: route.reason, account: route.account };
}
