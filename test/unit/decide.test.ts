import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decide, type RouteInput, type RouteProtocol } from '../../src/core/routing/index.js';
import { ACCOUNT_STATES, type AccountState } from '../../src/core/state/types.js';

const PROTOCOLS: RouteProtocol[] = ['imap', 'pop3', 'smtp'];
const ALL = { imap: true, pop3: true, smtp: true };

function input(over: Partial<RouteInput>): RouteInput {
  return {
    protocol: 'imap',
    purpose: 'login',
    state: undefined,
    strategy: 'proxy',
    source: ALL,
    destination: ALL,
    canTransfer: true,
    ...over,
  };
}

/** What every state does at login with strategy proxy, the default. */
const PROXY_LOGIN: Record<AccountState | 'none', string> = {
  none: 'source first-login capture->captured',
  unknown: 'source first-login capture->captured',
  captured: 'source captured capture',
  failed: 'source retry-after-failure capture',
  excluded: 'source excluded',
  transferring: 'refuse transferring account-busy',
  migrated: 'destination migrated',
};

function show(r: ReturnType<typeof decide>): string {
  if (r.target === 'refuse') return `refuse ${r.reason} ${r.outcome}`;
  if (r.target === 'destination')
    return `destination ${r.reason}${r.transferFirst ? ' transfer-first' : ''}`;
  return `source ${r.reason}${r.capture ? ' capture' : ''}${r.captureState ? `->${r.captureState}` : ''}`;
}

const STATES: Array<AccountState | undefined> = [undefined, ...ACCOUNT_STATES];

describe('decide(): login, strategy proxy', () => {
  for (const protocol of PROTOCOLS) {
    for (const state of STATES) {
      it(`${protocol} ${state ?? 'no record'}`, () => {
        assert.equal(show(decide(input({ protocol, state }))), PROXY_LOGIN[state ?? 'none']);
      });
    }
  }
});

describe('decide(): login, strategy immediate', () => {
  const expected: Record<AccountState | 'none', string> = {
    ...PROXY_LOGIN,
    none: 'destination transfer-first transfer-first',
    unknown: 'destination transfer-first transfer-first',
    captured: 'destination transfer-first transfer-first',
  };
  for (const protocol of PROTOCOLS) {
    for (const state of STATES) {
      it(`${protocol} ${state ?? 'no record'}`, () => {
        assert.equal(
          show(decide(input({ protocol, state, strategy: 'immediate' }))),
          expected[state ?? 'none'],
        );
      });
    }
  }
  it('falls back to proxying when the copy engine cannot move the account', () => {
    assert.equal(
      show(decide(input({ strategy: 'immediate', canTransfer: false }))),
      PROXY_LOGIN.none,
    );
  });
  it('falls back to proxying when the destination lacks the protocol', () => {
    const r = decide(
      input({ protocol: 'pop3', strategy: 'immediate', destination: { imap: true } }),
    );
    assert.equal(show(r), PROXY_LOGIN.none);
  });
});

describe('decide(): SMTP delivery', () => {
  const expected: Record<AccountState | 'none', string> = {
    none: 'source first-login',
    unknown: 'source first-login',
    captured: 'source captured',
    failed: 'source retry-after-failure',
    excluded: 'source excluded',
    transferring: 'refuse transferring account-busy',
    migrated: 'destination migrated',
  };
  for (const strategy of ['proxy', 'immediate'] as const) {
    for (const state of STATES) {
      it(`${strategy} ${state ?? 'no record'}`, () => {
        assert.equal(
          show(decide(input({ protocol: 'smtp', purpose: 'delivery', state, strategy }))),
          expected[state ?? 'none'],
        );
      });
    }
  }
});

describe('decide(): missing endpoints', () => {
  it('a migrated POP3 account without destination POP3 is a temporary failure, never the source', () => {
    const r = decide(input({ protocol: 'pop3', state: 'migrated', destination: { imap: true } }));
    assert.equal(show(r), 'refuse no-destination-endpoint backend-unavailable');
  });
  it('a POP3 login with no source POP3 is a temporary failure', () => {
    for (const state of [undefined, 'captured', 'excluded', 'failed'] as const) {
      const r = decide(input({ protocol: 'pop3', state, source: { imap: true } }));
      assert.equal(show(r), 'refuse no-source-endpoint backend-unavailable');
    }
  });
  it('transferring stays busy even without endpoints', () => {
    const r = decide(input({ state: 'transferring', source: {}, destination: {} }));
    assert.equal(show(r), 'refuse transferring account-busy');
  });
  it('is pure: the same input gives the same route and the input is untouched', () => {
    const i = Object.freeze(input({ state: 'captured' }));
    assert.deepEqual(decide(i), decide(i));
  });
});
