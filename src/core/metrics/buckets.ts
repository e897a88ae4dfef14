/**
 * Histogram buckets, in seconds, each set chosen for the question an operator asks of it
 * (Prometheus cannot re-bucket afterwards, so the edges sit where the answers change).
 */

/**
 * A backend login: tens of ms on a LAN, a few hundred with TLS to a far host. Dovecot
 * delays a wrong password by 2 s (auth_failure_delay), so 1 and 2.5 split those off;
 * 10 and 30 catch a backend that answers only near the connect timeout (10 s default).
 */
export const LOGIN_CHECK_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * DATA to the backend's reply: the client's upload and the backend's content checks (spam
 * and virus scanners take seconds). Up to the 10-minute reply timeout (RFC 5321 4.5.3.2.6).
 */
export const SMTP_RELAY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

/**
 * One account's transfer: seconds for an empty mailbox, minutes for a typical one, hours
 * for tens of GB from a slow source; 8 h is where a transfer is worth a look.
 */
export const TRANSFER_BUCKETS = [
  1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800,
];

/**
 * How long a user cannot log in while the account moves: what the operator announces to
 * users ("a minute", "a quarter of an hour", "an hour"), so the edges fall there.
 */
export const LOCK_BUCKETS = [5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800];
