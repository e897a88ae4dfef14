/**
 * The SMTP front end's caps and timeouts in one place (style.md habit 7). The shared
 * src/core/limits.ts has no SMTP section yet; these can move there as they are.
 * Timeouts follow RFC 5321 4.5.3.2; the config's `timeouts` set connect, greeting and
 * per-command waits for the backends.
 */
import type { BareLineEndingPolicy } from './smuggling.js';

export interface SmtpLimits {
  /**
   * Largest message accepted, advertised with SIZE (RFC 1870) and enforced at MAIL FROM
   * (SIZE=) and during DATA.
   */
  maxMessageBytes: number;
  /** recipients per transaction; RFC 5321 4.5.3.1.8 asks for at least 100 */
  maxRecipients: number;
  /** a client silent this long is sent 421 (RFC 5321 4.5.3.2.7: at least 5 minutes) */
  clientIdleMs: number;
  /** wait for the backend's reply to the end of DATA (RFC 5321 4.5.3.2.6: 10 minutes) */
  dataReplyMs: number;
  /** bytes of the header section read for the relay log (Message-ID, Subject, List-Id) */
  maxHeaderBytes: number;
  /** what to do with a bare CR or LF inside a message (see smuggling.ts) */
  bareLineEndings: BareLineEndingPolicy;
  /** open client connections per listener (smtp-server's maxClients) */
  maxClients: number;
}

export const DEFAULT_SMTP_LIMITS: SmtpLimits = {
  maxMessageBytes: 50 * 1024 * 1024,
  maxRecipients: 100,
  clientIdleMs: 5 * 60_000,
  dataReplyMs: 10 * 60_000,
  maxHeaderBytes: 64 * 1024,
  bareLineEndings: 'normalize',
  maxClients: 1000,
};

export function resolveSmtpLimits(over: Partial<SmtpLimits> = {}): SmtpLimits {
  return { ...DEFAULT_SMTP_LIMITS, ...over };
}
