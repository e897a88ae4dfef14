import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  closesConnection,
  imapBye,
  imapReply,
  OUTCOMES,
  outcomeOf,
  pop3Reply,
  REPLIES,
  ReplyError,
  smtpReply,
  type Outcome,
} from '../../src/core/replies.js';

/** The table of protocol-notes.md, "Replies", written out as wire text. */
const EXPECTED: Record<
  Outcome,
  { imap?: RegExp; pop3?: RegExp; smtp: Partial<Record<'auth' | 'rcpt' | 'other', RegExp>> }
> = {
  'auth-failed': {
    imap: /^A1 NO \[AUTHENTICATIONFAILED\] Authentication failed\.\r\n$/,
    pop3: /^-ERR \[AUTH\] Authentication failed\.\r\n$/,
    smtp: { auth: /^535 5\.7\.8 /, other: /^535 5\.7\.8 / },
  },
  'account-busy': {
    imap: /^A1 NO \[UNAVAILABLE\] .*try again in a few minutes\.\r\n$/,
    pop3: /^-ERR \[SYS\/TEMP\] .*try again in a few minutes\.\r\n$/,
    smtp: { rcpt: /^450 4\.2\.1 /, other: /^451 4\.2\.0 /, auth: /^454 4\.7\.0 / },
  },
  'backend-unavailable': {
    imap: /^A1 NO \[UNAVAILABLE\] /,
    pop3: /^-ERR \[SYS\/TEMP\] /,
    smtp: { other: /^451 4\.4\.1 /, rcpt: /^451 4\.4\.1 /, auth: /^454 4\.7\.0 / },
  },
  'store-unavailable': {
    imap: /^A1 NO \[UNAVAILABLE\] /,
    pop3: /^-ERR \[SYS\/TEMP\] /,
    smtp: { other: /^451 4\.3\.0 /, rcpt: /^451 4\.3\.0 / },
  },
  'too-many-connections': {
    imap: /^\* BYE \[UNAVAILABLE\] /,
    pop3: /^-ERR \[SYS\/TEMP\] /,
    smtp: { other: /^421 4\.7\.0 / },
  },
  'too-many-attempts': {
    imap: /^A1 NO \[LIMIT\] /,
    pop3: /^-ERR \[SYS\/TEMP\] /,
    smtp: { other: /^421 4\.7\.0 / },
  },
  'privacy-required': {
    imap: /^A1 NO \[PRIVACYREQUIRED\] /,
    pop3: /^-ERR \[AUTH\] /,
    smtp: { other: /^530 5\.7\.0 / },
  },
  'relay-denied': { smtp: { rcpt: /^554 5\.7\.1 /, other: /^550 5\.7\.1 / } },
  'shutting-down': {
    imap: /^\* BYE \[UNAVAILABLE\] /,
    pop3: /^-ERR \[SYS\/TEMP\] /,
    smtp: { other: /^421 4\.3\.2 / },
  },
  'internal-error': {
    imap: /^A1 NO \[SERVERBUG\] /,
    pop3: /^-ERR \[SYS\/TEMP\] /,
    smtp: { other: /^451 4\.3\.0 / },
  },
  // SMTP-only outcomes (the SMTP front-end's)
  'recipient-deferred': { smtp: { other: /^452 4\.5\.3 /, rcpt: /^452 4\.5\.3 / } },
  'message-too-big': { smtp: { other: /^552 5\.3\.4 / } },
  'bare-line-ending': { smtp: { other: /^554 5\.6\.0 / } },
  'auth-required': { smtp: { other: /^530 5\.7\.0 / } },
  'login-timeout': {
    imap: /^\* BYE \[UNAVAILABLE\] Login time limit reached\.\r\n$/,
    pop3: /^-ERR \[SYS\/TEMP\] Login time limit reached\.\r\n$/,
    smtp: { other: /^421 4\.7\.0 / },
  },
  'too-many-commands': { smtp: { other: /^421 4\.7\.0 / } },
  'too-many-errors': { smtp: { other: /^421 4\.7\.0 / } },
};

describe('replies table', () => {
  it('covers every outcome', () => {
    assert.deepEqual(Object.keys(REPLIES).sort(), [...OUTCOMES].sort());
    assert.deepEqual(Object.keys(EXPECTED).sort(), [...OUTCOMES].sort());
  });
  for (const outcome of OUTCOMES) {
    const e = EXPECTED[outcome];
    it(`${outcome}: IMAP`, () => {
      if (e.imap) assert.match(imapReply(outcome, 'A1'), e.imap);
      else assert.throws(() => imapReply(outcome, 'A1'), TypeError);
    });
    it(`${outcome}: POP3`, () => {
      if (e.pop3) assert.match(pop3Reply(outcome), e.pop3);
      else assert.throws(() => pop3Reply(outcome), TypeError);
    });
    it(`${outcome}: SMTP`, () => {
      for (const [phase, re] of Object.entries(e.smtp)) {
        assert.match(smtpReply(outcome, phase as 'auth' | 'rcpt' | 'other'), re, phase);
      }
    });
    it(`${outcome}: one CRLF-terminated ASCII line each`, () => {
      const lines = [smtpReply(outcome), smtpReply(outcome, 'rcpt'), smtpReply(outcome, 'auth')];
      if (e.imap) lines.push(imapReply(outcome, 'x'), imapBye(outcome));
      if (e.pop3) lines.push(pop3Reply(outcome));
      for (const l of lines) assert.match(l, /^[\x20-\x7e]+\r\n$/);
    });
  }
  it('BYE outcomes close the connection', () => {
    for (const o of OUTCOMES) {
      if (REPLIES[o].imap?.status === 'BYE') assert.equal(closesConnection(o), true, o);
    }
    assert.equal(closesConnection('auth-failed'), false);
  });
  it('maps errors to outcomes; unknown errors are internal', () => {
    assert.equal(outcomeOf(new ReplyError('account-busy', 'x')), 'account-busy');
    assert.equal(outcomeOf(new Error('boom')), 'internal-error');
    assert.equal(new ReplyError('auth-failed', 'd').code, 'auth-failed');
  });
  it('the auth failure text never depends on the account', () => {
    assert.equal(
      imapReply('auth-failed', 'a'),
      'a NO [AUTHENTICATIONFAILED] Authentication failed.\r\n',
    );
  });
});
