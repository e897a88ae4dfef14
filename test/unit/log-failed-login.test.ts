import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clientAddress, isFailedLogin } from '../../src/core/log/failed-login.js';
import { redactString } from '../../src/core/log/index.js';
import { FORGING_USER, loginLogLines } from '../support/login-log-lines.js';

describe('failed logins in the log', () => {
  it('json: one warn line, msg "login failed", then protocol, client, user, reason', () => {
    const { failed, others } = loginLogLines('json');
    assert.equal(failed.length, 4);
    const [first, mapped, braked, forged] = failed.map((f) => JSON.parse(f.line));
    assert.deepEqual(Object.keys(first).slice(0, 7), [
      'time',
      'level',
      'msg',
      'protocol',
      'client',
      'user',
      'reason',
    ]);
    assert.equal(first.level, 'warn');
    assert.equal(first.msg, 'login failed');
    assert.equal(first.client, '203.0.113.9');
    assert.equal(first.user, 'bob@example.org');
    assert.equal(first.reason, 'auth-failed');
    assert.equal(first.session, 's1');
    assert.equal(mapped.client, '198.51.100.4', 'IPv4-mapped IPv6 becomes the IPv4 address');
    assert.equal(braked.reason, 'too-many-attempts');
    assert.equal(braked.protocol, 'smtp');
    // the name reaches the log as redact() leaves it (its "login a b" part reads as IMAP LOGIN)
    assert.equal(forged.user, redactString(FORGING_USER));
    assert.ok(forged.user.includes('"client":"192.0.2.66"'));
    assert.equal(forged.client, '203.0.113.10');
    assert.ok(!others.some((l) => JSON.parse(l).msg === 'login failed'), others.join(''));
  });

  it('logfmt and human: the line an admin greps for', () => {
    const logfmt = loginLogLines('logfmt').failed[0]!.line;
    assert.match(
      logfmt,
      /^time=\S+ level=warn msg="login failed" protocol=imap client=203\.0\.113\.9 user=bob@example\.org reason=auth-failed session=s1 /,
    );
    const human = loginLogLines('human').failed[0]!.line;
    assert.match(
      human,
      /^\d\d:\d\d:\d\d\.\d{3} WARN {2}login failed {2}protocol=imap client=203\.0\.113\.9 user=bob@example\.org reason=auth-failed /,
    );
  });

  it('refusals that are not guesses and successful logins stay info lines', () => {
    const { others } = loginLogLines('json');
    const logins = others.map((l) => JSON.parse(l)).filter((o) => o.event === 'session.login');
    assert.deepEqual(
      logins.map((o) => [o.level, o.result, o.outcome]),
      [
        ['info', 'ok', undefined],
        ['info', 'ok', undefined],
        ['info', 'refused', 'backend-unavailable'],
        ['info', 'refused', 'account-busy'],
      ],
    );
  });

  it('which outcomes count, and the address form', () => {
    assert.equal(isFailedLogin('auth-failed'), true);
    assert.equal(isFailedLogin('too-many-attempts'), true);
    assert.equal(isFailedLogin('backend-unavailable'), false);
    assert.equal(isFailedLogin('privacy-required'), false);
    assert.equal(isFailedLogin(undefined), false);
    assert.equal(clientAddress('::FFFF:10.0.0.1'), '10.0.0.1');
    assert.equal(clientAddress('::ffff:a:b'), '::ffff:a:b');
    assert.equal(clientAddress('2001:db8::1'), '2001:db8::1');
  });
});
