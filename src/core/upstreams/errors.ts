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

/** The client-facing refusal for a failed hop. */
export function toReplyError(err: unknown, side: string): ReplyError {
  if (err instanceof ReplyError) return err;
  if (err instanceof UpstreamError) {
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
