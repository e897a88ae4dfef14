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
  /**
   * Submission (587, 465): time from accept to a successful AUTH, however busy the client.
   * clientIdleMs restarts on every command, so without this a NOOP every few minutes
   * holds a connection slot for ever (the IMAP/POP3 loginDeadlineMs, limits.ts). Port 25
   * has no AUTH and no deadline.
   */
  loginDeadlineMs: number;
  /**
   * NOOP, RSET, VRFY, EXPN, HELP, ETRN, HELO/EHLO on one connection since its last
   * accepted message, beyond which it gets 421 and is closed. Postfix's
   * smtpd_junk_command_limit is 100 and is also counted from the last message: a real
   * client sends two EHLOs (before and after STARTTLS) and an RSET per message, so 100
   * never cuts one off, while a client that only keeps the connection open is cut after
   * at most 100 commands instead of never.
   */
  maxJunkCommands: number;
  /**
   * Replies of 4xx or 5xx on one connection since its last accepted message, beyond which
   * it gets 421 and is closed: Postfix's smtpd_hard_error_limit (20, also counted "without
   * delivering mail"). A client that keeps sending commands that fail (a nested MAIL, RCPT
   * before MAIL) otherwise holds its connection for ever, each one restarting the idle
   * timer; a real client with a few unknown recipients is far from 20.
   */
  maxErrors: number;
}

export const DEFAULT_SMTP_LIMITS: SmtpLimits = {
  maxMessageBytes: 50 * 1024 * 1024,
  maxRecipients: 100,
  clientIdleMs: 5 * 60_000,
  dataReplyMs: 10 * 60_000,
  maxHeaderBytes: 64 * 1024,
  bareLineEndings: 'normalize',
  maxClients: 1000,
  loginDeadlineMs: 3 * 60_000,
  maxJunkCommands: 100,
  maxErrors: 20,
};

export function resolveSmtpLimits(over: Partial<SmtpLimits> = {}): SmtpLimits {
  return { ...DEFAULT_SMTP_LIMITS, ...over };
}
