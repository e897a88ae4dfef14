/**
 * Why a backend hop failed. The front-end maps `auth` to the uniform auth failure and
 * everything else to "temporarily unavailable"; the log gets the message (server text
 * included, never a password).
 */
import { NetError, type NetErrorCode } from '../net/errors.js';
import { ReplyError } from '../replies.js';

export type UpstreamErrorCode =
  | NetErrorCode
  /** the backend refused the credentials */
  | 'EAUTH';

/**
 * A failed hop in the backend's own words (a refusal, a BYE); failures of the connection
 * itself arrive as the transport's NetError, of which this is one kind.
 */
export class UpstreamError extends NetError<UpstreamErrorCode> {
  override readonly name = 'UpstreamError';
  constructor(
    code: UpstreamErrorCode,
    message: string,
    /** what the server said, for the log */
    readonly serverText?: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, { cause: options?.cause });
  }
}

/** A failure of a backend hop: the backend's refusal or the connection's failure. */
export function isUpstreamFailure(err: unknown): err is NetError<UpstreamErrorCode> {
  return err instanceof NetError;
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
  if (err instanceof UpstreamError || err instanceof NetError) {
    const serverText = err instanceof UpstreamError ? err.serverText : undefined;
    if (err.code === 'EAUTH' && isTemporaryRefusal(serverText))
      return new ReplyError(
        'backend-unavailable',
        `${side} cannot check passwords now: ${serverText ?? err.message}`,
        { cause: err },
      );
    if (err.code === 'EAUTH')
      return new ReplyError(
        'auth-failed',
        `${side} refused the login: ${serverText ?? err.message}`,
        { cause: err },
      );
    return new ReplyError('backend-unavailable', `${side}: ${err.message}`, { cause: err });
  }
  return new ReplyError('internal-error', `${side}: ${(err as Error)?.message ?? String(err)}`, {
    cause: err,
  });
}
