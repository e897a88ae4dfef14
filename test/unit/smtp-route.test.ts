/**
 * Routing a recipient on port 25 (pure): local domains only, the account's state picks
 * the backend, and a transaction never mixes backends (452 4.5.3 for the minority).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  accountKeys,
  joinTransaction,
  routeRecipient,
  routeSubmissionRecipient,
  type RouteContext,
} from '../../src/core/smtp/recipients.js';
import {
  enhancedReplyText,
  xclientAddr,
  xclientCommand,
  xtext,
} from '../../src/core/smtp/smtp-client.js';
import type { AccountState } from '../../src/core/state/types.js';

function ctx(states: Record<string, AccountState>, over: Partial<RouteContext> = {}): RouteContext {
  return {
    domains: ['Example.org', 'example.net'],
    hasSource: true,
    hasDestination: true,
    stateOf: (a) => states[a],
    ...over,
  };
}

describe('SMTP recipient routing', () => {
  it('refuses foreign domains, address literals and sender-specified routing with relay-denied', () => {
    for (const rcpt of [
      'x@foreign.test',
      'x@[127.0.0.1]',
      'x@example.org.evil.test',
      'nobody',
      '@example.org',
      'a%b@example.org',
      'b!a@example.org',
      '"a@b"@example.org',
    ]) {
      const r = routeRecipient(rcpt, ctx({}));
      assert.equal(r.kind, 'refuse', rcpt);
      assert.equal(r.kind === 'refuse' && r.outcome, 'relay-denied', rcpt);
    }
  });

  it('routes by state: migrated -> destination, transferring -> refused busy, others and never seen -> source', () => {
    const states: Record<string, AccountState> = {
      'm@example.org': 'migrated',
      't@example.org': 'transferring',
      'c@example.org': 'captured',
      'f@example.org': 'failed',
      'e@example.org': 'excluded',
      'u@example.org': 'unknown',
    };
    const r = (a: string) => routeRecipient(a, ctx(states));
    assert.deepEqual(r('M@Example.ORG'), {
      kind: 'relay',
      side: 'destination',
      reason: 'migrated',
      account: 'm@example.org',
    });
    assert.deepEqual(r('t@example.org'), {
      kind: 'refuse',
      outcome: 'account-busy',
      detail: 'account is transferring',
    });
    for (const a of ['c', 'f', 'e', 'u', 'never-seen']) {
      const x = r(`${a}@example.org`);
      assert.equal(x.kind === 'relay' && x.side, 'source', a);
    }
    assert.equal((r('never-seen@example.net') as { reason: string }).reason, 'first-login');
  });

  it('finds an account recorded under its bare login name for the first domain only', () => {
    assert.deepEqual(accountKeys('Alice@example.org', ['example.org', 'example.net']), [
      'alice@example.org',
      'alice',
    ]);
    assert.deepEqual(accountKeys('alice@example.net', ['example.org', 'example.net']), [
      'alice@example.net',
    ]);
    const r = routeRecipient(
      'alice@example.org',
      ctx({ alice: 'migrated' }, { domains: ['example.org'] }),
    );
    assert.equal(r.kind === 'relay' && r.side, 'destination');
    const other = routeRecipient('alice@example.net', ctx({ alice: 'migrated' }));
    assert.equal(other.kind === 'relay' && other.side, 'source');
  });

  it('refuses with backend-unavailable when the needed endpoint is not configured', () => {
    const r = routeRecipient(
      'm@example.org',
      ctx({ 'm@example.org': 'migrated' }, { hasDestination: false }),
    );
    assert.equal(r.kind === 'refuse' && r.outcome, 'backend-unavailable');
  });

  it('lets a store failure through to the caller (it answers 451 4.3.0)', () => {
    assert.throws(
      () =>
        routeRecipient(
          'a@example.org',
          ctx(
            {},
            {
              stateOf: () => {
                throw new Error('store closed');
              },
            },
          ),
        ),
      /store closed/,
    );
  });

  it('joins, defers or switches a transaction', () => {
    assert.equal(joinTransaction({ side: undefined, accepted: 0, lmtp: false }, 'source'), 'join');
    assert.equal(joinTransaction({ side: 'source', accepted: 3, lmtp: false }, 'source'), 'join');
    assert.equal(
      joinTransaction({ side: 'source', accepted: 1, lmtp: false }, 'destination'),
      'defer',
    );
    assert.equal(
      joinTransaction({ side: 'source', accepted: 0, lmtp: false }, 'destination'),
      'switch',
    );
    // LMTP answers per recipient after DATA: one recipient per transaction
    assert.equal(
      joinTransaction({ side: 'destination', accepted: 0, lmtp: true }, 'destination'),
      'join',
    );
    assert.equal(
      joinTransaction({ side: 'destination', accepted: 1, lmtp: true }, 'destination'),
      'defer',
    );
  });
});

describe('SMTP submission recipient routing', () => {
  const states: Record<string, AccountState> = {
    'm@example.org': 'migrated',
    't@example.org': 'transferring',
    'c@example.org': 'captured',
  };

  it('sends local recipients straight to the side holding their mailbox, the rest via the home', () => {
    const fromSource = (a: string) => routeSubmissionRecipient(a, 'source', ctx(states));
    assert.deepEqual(fromSource('M@example.org'), {
      kind: 'direct',
      side: 'destination',
      reason: 'migrated',
      account: 'm@example.org',
    });
    for (const a of ['c@example.org', 'never@example.org', 'x@foreign.test', 'a%b@example.org'])
      assert.deepEqual(fromSource(a), { kind: 'home' }, a);
    const fromDestination = (a: string) => routeSubmissionRecipient(a, 'destination', ctx(states));
    assert.deepEqual(fromDestination('m@example.org'), { kind: 'home' });
    assert.equal(fromDestination('c@example.org').kind, 'direct');
    assert.equal(fromDestination('never@example.org').kind, 'direct');
    assert.deepEqual(fromDestination('x@foreign.test'), { kind: 'home' });
  });

  it('refuses a recipient being moved, and one whose side has no delivery endpoint', () => {
    const busy = routeSubmissionRecipient('t@example.org', 'source', ctx(states));
    assert.equal(busy.kind === 'refuse' && busy.outcome, 'account-busy');
    const none = routeSubmissionRecipient(
      'm@example.org',
      'source',
      ctx(states, { hasSource: false, hasDestination: false }),
    );
    assert.equal(none.kind === 'refuse' && none.outcome, 'backend-unavailable');
    assert.deepEqual(
      routeSubmissionRecipient('c@example.org', 'source', ctx(states, { hasSource: false })),
      { kind: 'home' },
      "the home's own side needs no delivery endpoint",
    );
  });
});

describe('backend replies for the client', () => {
  it("keeps the backend's enhanced code once, or adds the class's X.0.0", () => {
    const t = (code: number, ...lines: string[]) => enhancedReplyText({ code, lines });
    assert.equal(t(250, '2.0.0 Ok: queued as X'), '2.0.0 Ok: queued as X');
    assert.equal(t(550, '5.1.1 <a@b>: unknown', '5.1.1 see docs'), '5.1.1 <a@b>: unknown see docs');
    assert.equal(t(550, 'no such user'), '5.0.0 no such user');
    assert.equal(t(451, '5.1.1 wrong class'), '4.0.0 5.1.1 wrong class');
    assert.equal(t(250, ''), '2.0.0');
  });
});

describe('XCLIENT command', () => {
  it('sends only the attributes the backend offers, xtext-encoded', () => {
    const client = {
      address: '::ffff:192.0.2.7',
      port: 4242,
      helo: 'mx one+two',
      proto: 'ESMTP' as const,
    };
    assert.equal(
      xclientCommand('NAME ADDR PROTO HELO REVERSE_NAME PORT LOGIN DESTADDR DESTPORT', client),
      'XCLIENT ADDR=192.0.2.7 PORT=4242 NAME=[UNAVAILABLE] HELO=mx+20one+2Btwo PROTO=ESMTP',
    );
    assert.equal(xclientCommand('ADDR', client), 'XCLIENT ADDR=192.0.2.7');
    assert.equal(xclientCommand('HELO PORT', client), undefined, 'no ADDR, no XCLIENT');
    assert.equal(xclientAddr('2001:db8::1'), 'IPV6:2001:db8::1');
    assert.equal(xtext('a=b+c\u00e9'), 'a+3Db+2Bc+E9');
  });
});
