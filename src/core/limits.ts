/**
 * Every cap, timeout and brake parameter of the gateway in one place (style.md habit 7).
 * Values follow protocol-notes.md ("STARTTLS and TLS", "Logins") and what Dovecot and
 * perdition do; the config's `timeouts` override the backend ones.
 */

import { DEFAULT_SWEEP_DELAYS_MS } from './workers/late-mail.js';

export interface PreauthLimits {
  /** longest command line before login, without literals (protocol-notes: <= 8 KiB) */
  maxLineBytes: number;
  /** largest IMAP literal before login ({n} and {n+}) */
  maxLiteralBytes: number;
  /** longest SASL response line (base64) */
  maxSaslBytes: number;
  /** RFC 3501 tags are short in practice; Dovecot caps at 100 */
  maxTagBytes: number;
  /**
   * IMAP literals in one command before login: LOGIN needs two at most. Each
   * {n} costs a "+" reply and each {n+} a piece to keep, so a few bytes of input must not
   * buy thousands of them.
   */
  maxLiteralsPerCommand: number;
  /** user names: RFC 5321 4.5.3.1.3 caps an address at 256 octets */
  maxUserBytes: number;
  maxPasswordBytes: number;
  /** protocol errors before the gateway closes the connection */
  maxBadCommands: number;
  /** commands of any kind before login: bounds a client that never logs in */
  maxCommands: number;
  /** wrong passwords on one connection before it is closed */
  maxFailuresPerConnection: number;
  /** silence before login after which the connection is closed */
  idleMs: number;
  /**
   * time from accept to login, however busy the client: idleMs restarts on every byte, so
   * without this a NOOP a minute holds a connection slot for ever
   */
  loginDeadlineMs: number;
}

export interface BrakeLimits {
  /** a failed login's reply is delayed this long at first (Dovecot: 2 s, perdition: 3 s) */
  failureDelayMs: number;
  /** the delay doubles with each failure of the address, up to this (Dovecot's auth_penalty: 15 s) */
  maxFailureDelayMs: number;
  /** sockets held in that delay at once; beyond it the reply is sent at once and the connection closed */
  maxDelayedSockets: number;
  /** window over which failures are counted */
  windowMs: number;
  /** failures (plus attempts in flight) from one client address (IPv6: its /64) before its logins are refused */
  maxFailuresPerAddress: number;
  /**
   * failures (plus attempts in flight) for one account FROM ONE client address before that
   * address's logins for it are refused; the owner elsewhere is never refused
   */
  maxFailuresPerAccount: number;
  /** failures for one account from everywhere beyond which its failures get the longest delay (never a refusal) */
  slowAccountAfter: number;
  /** login attempts in flight at once from one client address; more wait, then are refused, without reaching a backend */
  maxConcurrentPerAddress: number;
  /** login attempts in flight at once for one account (above maxFailuresPerAccount, so one address cannot fill it) */
  maxConcurrentPerAccount: number;
  /**
   * how long an attempt waits for room under those two caps before it is refused try-later:
   * a burst of right passwords from one address (an office behind NAT reconnecting after a
   * restart, a webmail host) queues instead of being turned away
   */
  concurrencyWaitMs: number;
  /** attempts waiting for room at once, over all addresses; beyond it they are refused at once */
  maxWaitingAttempts: number;
  /** tracked addresses/accounts; the oldest are forgotten beyond this */
  maxTracked: number;
}

export interface ConnectionLimits {
  maxTotal: number;
  /** per client: an IPv4 address, an IPv6 /64 (net-address.ts clientKey) */
  maxPerAddress: number;
  /** implicit TLS (993, 995): a connection counts from accept and has this long to finish its handshake */
  handshakeMs: number;
  /** PROXY protocol listeners: the header must arrive within this, before any greeting or TLS */
  proxyHeaderMs: number;
  /** largest v2 header taken (16 bytes, addresses and TLVs); v1 is 107 bytes by its spec */
  maxProxyHeaderBytes: number;
  /** connections waiting for their header at once from one proxy address (slots are taken after it) */
  maxProxyPending: number;
}

export interface GatewayLimits {
  preauth: PreauthLimits;
  brakes: BrakeLimits;
  connections: ConnectionLimits;
  /** how long a client waits for an `immediate` transfer before it is proxied to the source */
  immediateWaitMs: number;
  /** SIGTERM: how long open sessions may go on before they are cut */
  shutdownGraceMs: number;
  /** worker pool: first retry after a failed transfer, doubling up to the max */
  retryBaseMs: number;
  retryMaxMs: number;
  /** worker pool: transfer at most this many times before leaving an account failed */
  maxTransferAttempts: number;
  /** worker pool: an account with an open session waits up to this long before it is moved anyway */
  sessionQuietMaxWaitMs: number;
  /** worker pool: how often it looks for work when nothing woke it */
  workerPollMs: number;
  /** worker pool: late-mail sweeps after an account's switch, delays from it (workers/late-mail.ts) */
  lateMailSweepMs: readonly number[];
}

export const DEFAULT_LIMITS: GatewayLimits = {
  preauth: {
    maxLineBytes: 8 * 1024,
    maxLiteralBytes: 8 * 1024,
    maxSaslBytes: 8 * 1024,
    maxTagBytes: 64,
    maxLiteralsPerCommand: 8,
    maxUserBytes: 256,
    maxPasswordBytes: 1024,
    maxBadCommands: 5,
    maxCommands: 100,
    maxFailuresPerConnection: 3,
    idleMs: 60_000,
    loginDeadlineMs: 3 * 60_000,
  },
  brakes: {
    failureDelayMs: 2_000,
    maxFailureDelayMs: 15_000,
    maxDelayedSockets: 256,
    windowMs: 10 * 60_000,
    maxFailuresPerAddress: 30,
    // a mail client opens several connections at once (Thunderbird: 5): room for them
    maxFailuresPerAccount: 8,
    slowAccountAfter: 10,
    maxConcurrentPerAddress: 16,
    maxConcurrentPerAccount: 20,
    concurrencyWaitMs: 10_000,
    maxWaitingAttempts: 1_000,
    maxTracked: 100_000,
  },
  connections: {
    maxTotal: 10_000,
    maxPerAddress: 1_000,
    handshakeMs: 30_000,
    proxyHeaderMs: 5_000,
    maxProxyHeaderBytes: 2_048,
    maxProxyPending: 1_000,
  },
  immediateWaitMs: 30_000,
  shutdownGraceMs: 30_000,
  retryBaseMs: 60_000,
  retryMaxMs: 6 * 3600_000,
  maxTransferAttempts: 8,
  sessionQuietMaxWaitMs: 30 * 60_000,
  workerPollMs: 5_000,
  lateMailSweepMs: DEFAULT_SWEEP_DELAYS_MS,
};

type DeepPartial<T> = {
  [K in keyof T]?: T[K] extends readonly unknown[]
    ? T[K]
    : T[K] extends object
      ? Partial<T[K]>
      : T[K];
};
export type LimitsOverride = DeepPartial<GatewayLimits>;

export function resolveLimits(over: LimitsOverride = {}): GatewayLimits {
  return {
    ...DEFAULT_LIMITS,
    ...over,
    preauth: { ...DEFAULT_LIMITS.preauth, ...over.preauth },
    brakes: { ...DEFAULT_LIMITS.brakes, ...over.brakes },
    connections: { ...DEFAULT_LIMITS.connections, ...over.connections },
  };
}
