/**
 * The failed-login line an intrusion blocker (fail2ban, sshguard, CrowdSec) can match:
 * one line per failed login, at warn, message "login failed", the fields in this order:
 *
 *   login failed protocol=imap client=203.0.113.9 user="bob@example.org" reason=auth-failed
 *
 * The client address comes before the user name, which the client chooses, so a filter
 * anchored on the message takes the address from our field and never from the name
 * (deploy/fail2ban/filter.d/autoport.conf).
 */
import type { Outcome } from '../replies.js';

export const FAILED_LOGIN_MSG = 'login failed';

/**
 * Refusals that are the client's doing: a wrong password, or another try while the brakes
 * hold. A backend or store that is down, an account being moved (told only to the right
 * password) or a plaintext login on a TLS-only listener are not guesses: banning for them
 * would lock out real users during an outage.
 */
const GUESSES: ReadonlySet<Outcome> = new Set<Outcome>(['auth-failed', 'too-many-attempts']);

export function isFailedLogin(outcome: Outcome | undefined): boolean {
  return outcome !== undefined && GUESSES.has(outcome);
}

/**
 * A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d; a ban must name the IPv4
 * address, or the IPv4 firewall rule never matches.
 */
export function clientAddress(address: string): string {
  const m = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  return m?.[1] ?? address;
}
