/**
 * THE table of replies the gateway writes to clients on its own (protocol-notes.md,
 * "Replies"). Every refusal in the IMAP, POP3 and SMTP front-ends is an Outcome looked up
 * here, so one outcome reads the same in all three protocols and one test covers them all.
 *
 * IMAP response codes: RFC 5530 (AUTHENTICATIONFAILED, UNAVAILABLE, LIMIT, PRIVACYREQUIRED,
 * SERVERBUG); POP3: RFC 2449 extended codes with RFC 3206's [AUTH], [SYS/TEMP], [IN-USE];
 * SMTP: RFC 3463 enhanced status codes, RFC 4954 6 for AUTH (535 5.7.8, 454 4.7.0, 530 5.7.0).
 *
 * Texts are fixed and say nothing about the account (no user enumeration): the real cause
 * goes to the log, never to the client.
 */

export type Outcome =
  /** the source refused the password (whatever it said) */
  | 'auth-failed'
  /** the account is locked for its transfer */
  | 'account-busy'
  /** source or destination down, refused the connection or timed out */
  | 'backend-unavailable'
  /** the account store cannot be read or written: fail closed */
  | 'store-unavailable'
  /** connection limits (total or per address) */
  | 'too-many-connections'
  /** failed-login brakes (per address, per account, per connection) */
  | 'too-many-attempts'
  /** plaintext login before TLS on a listener that requires TLS */
  | 'privacy-required'
  /** SMTP: a recipient in a domain the gateway does not serve, without AUTH */
  | 'relay-denied'
  /** the gateway is shutting down */
  | 'shutting-down'
  /** a bug in the gateway: the client gets a temporary failure, the log the stack */
  | 'internal-error'
  /** SMTP: a recipient for another backend than the transaction's: send it in a new transaction */
  | 'recipient-deferred'
  /** SMTP: the message is larger than the SIZE the gateway advertised */
  | 'message-too-big'
  /** SMTP: a bare CR or LF in a message, when the gateway refuses them (smuggling.ts) */
  | 'bare-line-ending'
  /** SMTP submission: MAIL before AUTH */
  | 'auth-required'
  /** no login within the login deadline from accept (limits: loginDeadlineMs) */
  | 'login-timeout'
  /** SMTP: too many commands that move no mail (limits: maxJunkCommands) */
  | 'too-many-commands'
  /** SMTP: too many commands refused since the last message (limits: maxErrors) */
  | 'too-many-errors';

export const OUTCOMES: readonly Outcome[] = [
  'auth-failed',
  'account-busy',
  'backend-unavailable',
  'store-unavailable',
  'too-many-connections',
  'too-many-attempts',
  'privacy-required',
  'relay-denied',
  'shutting-down',
  'internal-error',
  'recipient-deferred',
  'message-too-big',
  'bare-line-ending',
  'auth-required',
  'login-timeout',
  'too-many-commands',
  'too-many-errors',
];

/** An IMAP reply: tagged NO, or untagged BYE when the connection is closed at once. */
export interface ImapReplySpec {
  status: 'NO' | 'BYE';
  code: string;
  text: string;
}

export interface SmtpReplySpec {
  code: number;
  enhanced: string;
  text: string;
}

export interface ReplySpec {
  imap?: ImapReplySpec;
  /** the line after "-ERR " */
  pop3?: string;
  smtp: {
    /** after AUTH (RFC 4954 6) */
    auth?: SmtpReplySpec;
    /** to a RCPT TO */
    rcpt?: SmtpReplySpec;
    /** anywhere else (greeting, MAIL, DATA) */
    other: SmtpReplySpec;
  };
  /** true when the front-end closes the connection after this reply */
  close: boolean;
}

const TRY_LATER = 'Account is being moved to a new server, try again in a few minutes.';
const UNAVAILABLE = 'Server temporarily unavailable, try again later.';

export const REPLIES: Readonly<Record<Outcome, ReplySpec>> = {
  'auth-failed': {
    imap: { status: 'NO', code: 'AUTHENTICATIONFAILED', text: 'Authentication failed.' },
    pop3: '[AUTH] Authentication failed.',
    smtp: { other: { code: 535, enhanced: '5.7.8', text: 'Authentication credentials invalid' } },
    close: false,
  },
  'account-busy': {
    imap: { status: 'NO', code: 'UNAVAILABLE', text: TRY_LATER },
    pop3: `[SYS/TEMP] ${TRY_LATER}`,
    smtp: {
      auth: { code: 454, enhanced: '4.7.0', text: TRY_LATER },
      rcpt: { code: 450, enhanced: '4.2.1', text: 'Mailbox is being moved, try again later' },
      other: { code: 451, enhanced: '4.2.0', text: 'Mailbox is being moved, try again later' },
    },
    close: false,
  },
  'backend-unavailable': {
    imap: { status: 'NO', code: 'UNAVAILABLE', text: UNAVAILABLE },
    pop3: `[SYS/TEMP] ${UNAVAILABLE}`,
    smtp: {
      auth: { code: 454, enhanced: '4.7.0', text: 'Temporary authentication failure' },
      other: { code: 451, enhanced: '4.4.1', text: 'Next hop temporarily unavailable' },
    },
    close: false,
  },
  'store-unavailable': {
    imap: { status: 'NO', code: 'UNAVAILABLE', text: UNAVAILABLE },
    pop3: `[SYS/TEMP] ${UNAVAILABLE}`,
    smtp: {
      auth: { code: 454, enhanced: '4.7.0', text: 'Temporary authentication failure' },
      other: { code: 451, enhanced: '4.3.0', text: 'Temporary local problem, try again later' },
    },
    close: false,
  },
  'too-many-connections': {
    imap: { status: 'BYE', code: 'UNAVAILABLE', text: 'Too many connections, try again later.' },
    pop3: '[SYS/TEMP] Too many connections, try again later.',
    smtp: {
      other: { code: 421, enhanced: '4.7.0', text: 'Too many connections, try again later' },
    },
    close: true,
  },
  'too-many-attempts': {
    imap: { status: 'NO', code: 'LIMIT', text: 'Too many failed logins, try again later.' },
    pop3: '[SYS/TEMP] Too many failed logins, try again later.',
    smtp: {
      other: { code: 421, enhanced: '4.7.0', text: 'Too many failed logins, try again later' },
    },
    close: true,
  },
  'privacy-required': {
    imap: { status: 'NO', code: 'PRIVACYREQUIRED', text: 'Use STARTTLS before logging in.' },
    pop3: '[AUTH] Use STLS before logging in.',
    smtp: { other: { code: 530, enhanced: '5.7.0', text: 'Must issue a STARTTLS command first' } },
    close: false,
  },
  'relay-denied': {
    smtp: {
      rcpt: { code: 554, enhanced: '5.7.1', text: 'Relay access denied' },
      other: { code: 550, enhanced: '5.7.1', text: 'Relay access denied' },
    },
    close: false,
  },
  'shutting-down': {
    imap: { status: 'BYE', code: 'UNAVAILABLE', text: 'Server shutting down.' },
    pop3: '[SYS/TEMP] Server shutting down.',
    smtp: { other: { code: 421, enhanced: '4.3.2', text: 'Server shutting down' } },
    close: true,
  },
  'internal-error': {
    // SERVERBUG (RFC 5530 3) tells the client the fault is not its own.
    imap: { status: 'NO', code: 'SERVERBUG', text: 'Internal error, try again later.' },
    pop3: '[SYS/TEMP] Internal error, try again later.',
    smtp: { other: { code: 451, enhanced: '4.3.0', text: 'Internal error, try again later' } },
    close: false,
  },
  // RFC 5321 4.5.3.1.10: the client sends the deferred recipients in a new transaction.
  'recipient-deferred': {
    smtp: {
      other: {
        code: 452,
        enhanced: '4.5.3',
        text: 'Too many recipients for this delivery, send the rest again in a new transaction',
      },
    },
    close: false,
  },
  // RFC 1870 6.2 (552 for a message over the fixed limit), RFC 3463 5.3.4.
  'message-too-big': {
    smtp: {
      other: {
        code: 552,
        enhanced: '5.3.4',
        text: 'Message size exceeds fixed maximum message size',
      },
    },
    close: false,
  },
  // RFC 5321 2.3.8: lines end in CRLF; RFC 3463 5.6.0 (other media error).
  'bare-line-ending': {
    smtp: {
      other: {
        code: 554,
        enhanced: '5.6.0',
        text: 'Message contains a bare CR or LF; lines must end with CRLF',
      },
    },
    close: false,
  },
  // RFC 4954 6: 530 5.7.0 Authentication required.
  'auth-required': {
    smtp: { other: { code: 530, enhanced: '5.7.0', text: 'Authentication required' } },
    close: false,
  },
  // RFC 5321 3.8 and 4.5.3.2: the server may close with 421 after its own time limit;
  // RFC 3463 X.7.0 (security or policy status), as Postfix and smtp-server's own cut-offs.
  'login-timeout': {
    imap: { status: 'BYE', code: 'UNAVAILABLE', text: 'Login time limit reached.' },
    pop3: '[SYS/TEMP] Login time limit reached.',
    smtp: { other: { code: 421, enhanced: '4.7.0', text: 'Login time limit reached' } },
    close: true,
  },
  // Postfix's smtpd_junk_command_limit, with the 421 of RFC 5321 3.8.
  'too-many-commands': {
    smtp: {
      other: { code: 421, enhanced: '4.7.0', text: 'Too many commands without a message' },
    },
    close: true,
  },
  // Postfix's smtpd_hard_error_limit, with the 421 of RFC 5321 3.8.
  'too-many-errors': {
    smtp: { other: { code: 421, enhanced: '4.7.0', text: 'Too many errors' } },
    close: true,
  },
};

/**
 * An expected refusal: the client gets REPLIES[outcome], the log gets `detail` (which must
 * never hold a password).
 */
export class ReplyError extends Error {
  override readonly name = 'ReplyError';
  constructor(
    readonly outcome: Outcome,
    readonly detail: string,
    options?: { cause?: unknown },
  ) {
    super(`${outcome}: ${detail}`, options);
  }
  get code(): Outcome {
    return this.outcome;
  }
}

/** The outcome an error maps to: ReplyError's own, anything else is internal-error. */
export function outcomeOf(err: unknown): Outcome {
  return err instanceof ReplyError ? err.outcome : 'internal-error';
}

function imapSpec(outcome: Outcome): ImapReplySpec {
  const spec = REPLIES[outcome].imap;
  if (!spec) throw new TypeError(`outcome ${outcome} has no IMAP reply`);
  return spec;
}

/**
 * The IMAP line (with CRLF) for an outcome answering command `tag`. A BYE outcome is
 * untagged (RFC 3501 7.1.5); the front-end closes after it.
 */
export function imapReply(outcome: Outcome, tag: string): string {
  const s = imapSpec(outcome);
  if (s.status === 'BYE') return `* BYE [${s.code}] ${s.text}\r\n`;
  return `${tag} NO [${s.code}] ${s.text}\r\n`;
}

/** The untagged BYE for an outcome met before any command (greeting time, shutdown). */
export function imapBye(outcome: Outcome): string {
  const s = imapSpec(outcome);
  return `* BYE [${s.code}] ${s.text}\r\n`;
}

export function pop3Reply(outcome: Outcome): string {
  const text = REPLIES[outcome].pop3;
  if (text === undefined) throw new TypeError(`outcome ${outcome} has no POP3 reply`);
  return `-ERR ${text}\r\n`;
}

export type SmtpPhase = 'auth' | 'rcpt' | 'other';

export function smtpSpec(outcome: Outcome, phase: SmtpPhase = 'other'): SmtpReplySpec {
  const s = REPLIES[outcome].smtp;
  return (phase === 'auth' ? s.auth : phase === 'rcpt' ? s.rcpt : undefined) ?? s.other;
}

export function smtpReply(outcome: Outcome, phase: SmtpPhase = 'other'): string {
  const s = smtpSpec(outcome, phase);
  return `${s.code} ${s.enhanced} ${s.text}\r\n`;
}

export function closesConnection(outcome: Outcome): boolean {
  return REPLIES[outcome].close;
}
