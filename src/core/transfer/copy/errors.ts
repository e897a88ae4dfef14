/**
 * Errors of the copy engine's IMAP sessions. Like imapflow, an error carries a stable `code`
 * and the server's own text, so the ledger can record why and the retry logic can tell a
 * transient failure (dropped connection, timeout, throttling) from a refusal.
 */
export type ImapErrorCode =
  | 'ECONNLOST' // connection closed or reset
  | 'ETIMEOUT' // no progress within the command timeout
  | 'ETHROTTLE' // the server asked us to slow down
  | 'ENO' // tagged NO
  | 'EBAD' // tagged BAD
  | 'EAUTH' // login refused
  | 'ETLS' // TLS required but not possible, or STARTTLS injection
  | 'EPROTOCOL' // the server sent something we cannot parse
  | 'ECONNECT'; // cannot connect at all

import { NetError } from '../../net/errors.js';
import { parseThrottle } from './throttle.js';

export class ImapError extends Error {
  override readonly name = 'ImapError';
  constructor(
    readonly code: ImapErrorCode,
    message: string,
    readonly detail: {
      /** the server's text (tagged NO/BAD or BYE) */
      serverText?: string;
      /** response code name such as OVERQUOTA, TOOBIG, LIMIT */
      serverCode?: string;
      /** back-off the server suggested, ms */
      delayMs?: number;
      cause?: unknown;
    } = {},
  ) {
    super(message, detail.cause === undefined ? undefined : { cause: detail.cause });
  }

  /** worth reconnecting and trying again */
  get transient(): boolean {
    return this.code === 'ECONNLOST' || this.code === 'ETIMEOUT' || this.code === 'ETHROTTLE';
  }
}

export function isTransient(err: unknown): boolean {
  if (err instanceof ImapError) return err.transient;
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ECONNRESET' || code === 'EPIPE' || code === 'ETIMEDOUT' || code === 'ECONNLOST';
}

/** A tagged NO/BAD as an error (ETHROTTLE when the server asks us to slow down). */
export function taggedError(
  label: string,
  t: { status: string; code?: { name: string }; text: string },
): ImapError {
  const throttle = parseThrottle(`${t.code ? `[${t.code.name}] ` : ''}${t.text}`);
  if (throttle) {
    return new ImapError('ETHROTTLE', `${label} is throttling: ${t.text}`, {
      serverText: t.text,
      serverCode: t.code?.name,
      delayMs: throttle.delayMs,
    });
  }
  return new ImapError(
    t.status === 'NO' ? 'ENO' : 'EBAD',
    `${label}: ${t.status}${t.code ? ` [${t.code.name}]` : ''} ${t.text}`,
    {
      serverText: t.text,
      serverCode: t.code?.name,
    },
  );
}

/**
 * A failure of the transport in the copier's terms: a link that could not be made is
 * ECONNECT, one that broke is ECONNLOST (worth a retry), and bytes after the STARTTLS
 * answer are a TLS failure, never retried.
 */
export function fromNetError(err: unknown, label: string): unknown {
  if (!(err instanceof NetError)) return err;
  const message =
    err.code === 'EINJECTION'
      ? `${label} sent data after the STARTTLS reply; possible injection, giving up`
      : err.message;
  return new ImapError(copierCode(err), message, { cause: err });
}

function copierCode(err: NetError): ImapErrorCode {
  switch (err.code) {
    case 'ETLS':
    case 'EINJECTION':
      return 'ETLS';
    case 'ECONNECT':
      return 'ECONNECT';
    case 'ETIMEOUT':
      return err.detail.phase === 'read' ? 'ETIMEOUT' : 'ECONNECT';
    case 'ECLOSED':
      return 'ECONNLOST';
    default:
      return 'EPROTOCOL';
  }
}

/**
 * The connection ended: a BYE that asked us to slow down is ETHROTTLE (with the delay it
 * asked for), anything else ECONNLOST with the BYE text or the socket's error.
 */
export function connectionLost(
  label: string,
  url: string,
  byeText: string,
  cause?: Error,
): ImapError {
  const throttle = byeText ? parseThrottle(byeText) : null;
  if (throttle) {
    return new ImapError('ETHROTTLE', `${label} closed the connection: ${byeText}`, {
      serverText: byeText,
      delayMs: throttle.delayMs,
    });
  }
  const why = byeText ? `: ${byeText}` : cause ? ` (${cause.message})` : '';
  return new ImapError('ECONNLOST', `${label} ${url} closed the connection${why}`, {
    serverText: byeText || undefined,
    cause,
  });
}
