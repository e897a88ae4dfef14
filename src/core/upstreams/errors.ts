/**
 * Why a backend hop failed. The front-end maps `auth` to the uniform auth failure and
 * everything else to "temporarily unavailable"; the log gets the message (server text
 * included, never a password).
 */
import { ReplyError } from '../replies.js';

export type UpstreamErrorCode =
  | 'ECONNECT'
  | 'ETIMEOUT'
  | 'ETLS'
  | 'EPROTOCOL'
  | 'ECLOSED'
  /** the backend refused the credentials */
  | 'EAUTH';

export class UpstreamError extends Error {
  override readonly name = 'UpstreamError';
  constructor(
    readonly code: UpstreamErrorCode,
    message: string,
    /** what the server said, for the log */
    readonly serverText?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * A login refusal that means "not now" rather than "wrong password": IMAP `NO [UNAVAILABLE]`,
 * `[SERVERBUG]`, `[INUSE]` (RFC 5530 3), POP3 `-ERR [SYS/TEMP]`, `[IN-USE]` (RFC 3206 4),
 * SMTP 4xx to AUTH (RFC 4954 6: 454 4.7.0). Dovecot says UNAVAILABLE / SYS/TEMP when its
 * password database is down: counting that as a guess would brake the owner.
 */
const TEMPORARY_REFUSAL = /^\s*(?:\[(?:UNAVAILABLE|SERVERBUG|INUSE|SYS\/TEMP|IN-USE)\b|4\d\d\b)/i;

export function isTemporaryRefusal(serverText: string | undefined): boolean {
  return serverText !== undefined && TEMPORARY_REFUSAL.test(serverText);
}

/** The client-facing refusal for a failed hop. */
export function toReplyError(err: unknown, side: string): ReplyError {
  if (err instanceof ReplyError) return err;
  if (err instanceof UpstreamError) {
    if (err.code === 'EAUTH' && isTemporaryRefusal(err.serverText))
      return new ReplyError(
        'backend-unavailable',
        `${side} cannot check passwords now: ${err.serverText ?? err.message}`,
        { cause: err },
      );
    if (err.code === 'EAUTH')
      return new ReplyError(
        'auth-failed',
        `${side} refused the login: ${err.serverText ?? err.message}`,
        { cause: err },
      );
    return new ReplyError('backend-unavailable', `${side}: ${err.message}`, { cause: err });
  }
  return new ReplyError('internal-error', `${side}: ${(err as Error)?.message ?? String(err)}`, {
    cause: err,
  });
}
