import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EventBus, type GatewayEvent } from '../../src/core/bus.js';
import { Brakes } from '../../src/core/login/brakes.js';
import { guardRefusal, runLogin, type FlowRequest } from '../../src/core/login/login-flow.js';
import { DEFAULT_LIMITS } from '../../src/core/limits.js';
import { silentLogger } from '../../src/core/log/logger.js';
import { ReplyError, outcomeOf } from '../../src/core/replies.js';
import { StateError } from '../../src/core/state/errors.js';
import { toReplyError, UpstreamError } from '../../src/core/upstreams/errors.js';

describe('a backend refusing a login', () => {
  const outcome = (serverText: string) =>
    toReplyError(new UpstreamError('EAUTH', 'refused the login', serverText), 'source').outcome;

  it('"not now" is a try-later: IMAP UNAVAILABLE/SERVERBUG/INUSE, POP3 SYS/TEMP/IN-USE, SMTP 4xx', () => {
    for (const text of [
      '[UNAVAILABLE] Temporary authentication failure. [host:2026-12-03 08:00:00]',
      '[SERVERBUG] Internal error',
      '[INUSE] Mailbox locked',
      '[SYS/TEMP] Temporary authentication failure.',
      '[IN-USE] Mailbox locked',
      '454 4.7.0 Temporary authentication failure',
    ])
      assert.equal(outcome(text), 'backend-unavailable', text);
  });

  it('a wrong password stays a wrong password', () => {
    for (const text of [
      '[AUTHENTICATIONFAILED] Authentication failed.',
      '[AUTH] Authentication failed.',
      'Authentication failed: UNAVAILABLE in the text is not a code',
      '535 5.7.8 Error: authentication failed',
    ])
      assert.equal(outcome(text), 'auth-failed', text);
  });
});

function rig(over: Partial<typeof DEFAULT_LIMITS.brakes> = {}) {
  const brakes = new Brakes(
    { ...DEFAULT_LIMITS.brakes, maxFailuresPerAccount: 2, ...over },
    { sleep: async () => undefined },
  );
  const bus = new EventBus();
  const events: GatewayEvent[] = [];
  bus.onAny((e) => events.push(e));
  const deps = { brakes, bus, logger: silentLogger };
  const req = (user = 'alice@example.org'): FlowRequest => ({
    protocol: 'imap',
    user,
    mechanism: 'LOGIN',
    session: 's1',
    client: '192.0.2.1',
  });
  return { brakes, deps, req, events };
}

describe('runLogin', () => {
  it('counts wrong passwords only; a backend or store down, or a bug, is not a guess', async () => {
    const { brakes, deps, req } = rig();
    const throwing = (err: unknown) => () => Promise.reject(err);
    const results = [];
    for (const err of [
      new ReplyError('backend-unavailable', 'down'),
      new StateError('EIO', 'disk'),
      new Error('bug'),
      new ReplyError('backend-unavailable', 'down'),
    ])
      results.push(await runLogin(req(), deps, throwing(err)));
    assert.deepEqual(
      results.map((r) => (r.ok ? 'ok' : r.outcome)),
      ['backend-unavailable', 'store-unavailable', 'internal-error', 'backend-unavailable'],
    );
    assert.equal(brakes.inFlight, 0, 'every attempt ended');
    const wrong = throwing(new ReplyError('auth-failed', 'no'));
    assert.deepEqual(await runLogin(req(), deps, wrong), {
      ok: false,
      outcome: 'auth-failed',
      close: false,
    });
    await runLogin(req(), deps, wrong);
    assert.deepEqual(await runLogin(req(), deps, () => Promise.resolve('never')), {
      ok: false,
      outcome: 'too-many-attempts',
      close: true,
    });
  });

  it('a user name that is no account name is a wrong password, counted for the address', async () => {
    const { brakes, deps, req, events } = rig({ maxFailuresPerAddress: 1 });
    let carried = false;
    const r = await runLogin(req('not an address\u0000'), deps, async () => (carried = true));
    assert.equal(r.ok ? 'ok' : r.outcome, 'auth-failed');
    assert.equal(carried, false);
    assert.equal(brakes.inFlight, 0);
    const next = await runLogin(req('bob@example.org'), deps, async () => 'x');
    assert.equal(next.ok ? 'ok' : next.outcome, 'too-many-attempts');
    assert.deepEqual(
      events.map((e) => (e.type === 'session.login' ? e.outcome : e.type)),
      ['auth-failed', 'too-many-attempts'],
    );
  });

  it('success hands the value over with the normalised address and forgets the pair', async () => {
    const { deps, req } = rig();
    await runLogin(req(), deps, () => Promise.reject(new ReplyError('auth-failed', 'no')));
    const r = await runLogin(req('Alice@Example.ORG'), deps, async (a) => `landed ${a}`);
    assert.deepEqual(r, {
      ok: true,
      address: 'alice@example.org',
      value: 'landed alice@example.org',
    });
    await runLogin(req(), deps, () => Promise.reject(new ReplyError('auth-failed', 'no')));
    const again = await runLogin(req(), deps, async () => 'in');
    assert.equal(again.ok, true, 'one failure since the success, under the limit of two');
  });
});

describe('guardRefusal', () => {
  const busy = { outcome: 'account-busy' as const, reason: 'transferring' };
  const told = async (proof: Parameters<typeof guardRefusal>[1]) =>
    guardRefusal(busy, proof).then(
      () => assert.fail('guardRefusal always throws'),
      (err: unknown) => outcomeOf(err),
    );

  it('tells the route only to the right password', async () => {
    assert.equal(await told({ captured: () => 'right' }), 'account-busy');
    assert.equal(await told({ captured: () => 'wrong' }), 'auth-failed');
    let asked = 0;
    const source = (err?: unknown) => async () => {
      asked++;
      if (err) throw err;
    };
    assert.equal(await told({ captured: () => 'right', atSource: source() }), 'account-busy');
    assert.equal(asked, 0, 'a captured password needs no source');
    assert.equal(await told({ captured: () => undefined, atSource: source() }), 'account-busy');
    const refused = new UpstreamError('EAUTH', 'refused', '[AUTHENTICATIONFAILED] no');
    assert.equal(
      await told({ captured: () => undefined, atSource: source(refused) }),
      'auth-failed',
    );
    const down = new UpstreamError('ECONNECT', 'refused');
    assert.equal(
      await told({ captured: () => undefined, atSource: source(down) }),
      'backend-unavailable',
    );
    assert.equal(asked, 3);
    assert.equal(
      await told({ captured: () => undefined }),
      'account-busy',
      'nothing to check against',
    );
  });
});
