/**
 * The errors the SMTP front end answers with: smtp-server turns one thrown by a handler
 * into `${responseCode} ${message}`, and the message starts with the RFC 3463 code, which
 * smtp-server-overrides.ts then leaves alone. Our own refusals come from the reply table (replies.ts), a
 * backend's are passed on as it said them.
 */
import { smtpSpec, type Outcome, type SmtpPhase } from '../replies.js';
import { enhancedReplyText, type SmtpReply } from './smtp-client.js';

/** An error smtp-server turns into a reply line: `${responseCode} ${message}`. */
export class SmtpReplyError extends Error {
  constructor(
    readonly responseCode: number,
    message: string,
  ) {
    super(message);
  }
}

export function outcomeError(outcome: Outcome, phase: SmtpPhase = 'other'): SmtpReplyError {
  const s = smtpSpec(outcome, phase);
  return new SmtpReplyError(s.code, `${s.enhanced} ${s.text}`);
}

/** A backend's refusal, passed to the client as the backend said it, enhanced code included. */
export function passThrough(r: SmtpReply): SmtpReplyError {
  // Only failure codes go through; a backend that answers 1xx/3xx where a final reply belongs is broken.
  if (r.code < 400 || r.code > 599) return outcomeError('backend-unavailable');
  return new SmtpReplyError(r.code, enhancedReplyText(r));
}
