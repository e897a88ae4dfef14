import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Brakes } from '../../src/core/gateway/brakes.js';
import { DEFAULT_LIMITS, type BrakeLimits } from '../../src/core/limits.js';

function brakes(over: Partial<BrakeLimits> = {}) {
  let now = 1_000_000;
  const sleeps: Array<() => void> = [];
  const b = new Brakes(
    {
      ...DEFAULT_LIMITS.brakes,
      failureDelayMs: 2000,
      maxDelayedSockets: 3,
      maxFailuresPerAddress: 5,
      maxFailuresPerAccount: 3,
      windowMs: 60_000,
      maxTracked: 100,
      ...over,
    },
    { now: () => now, sleep: () => new Promise<void>((r) => sleeps.push(r)) },
  );
  return {
    b,
    advance: (ms: number) => (now += ms),
    release: () => sleeps.splice(0).forEach((f) => f()),
    sleeps,
  };
}

describe('brakes', () => {
  it('blocks an account after its failures, from any address, until the window passes', () => {
    const { b, advance } = brakes();
    for (const ip of ['10.0.0.1', '10.0.0.2', '10.0.0.3']) {
      assert.equal(b.blocked(ip, 'Alice@x'), undefined);
      b.failed(ip, 'alice@x');
    }
    assert.equal(b.blocked('10.9.9.9', 'ALICE@X'), 'account');
    assert.equal(b.blocked('10.9.9.9', 'bob@x'), undefined);
    advance(60_000);
    assert.equal(b.blocked('10.9.9.9', 'alice@x'), undefined);
  });

  it('blocks an address that guesses many accounts', () => {
    const { b } = brakes();
    for (let i = 0; i < 5; i++) b.failed('10.0.0.7', `user${i}@x`);
    assert.equal(b.blocked('10.0.0.7', 'fresh@x'), 'address');
    assert.equal(b.blocked('10.0.0.8', 'fresh@x'), undefined);
  });

  it('a success clears the account, not the address', () => {
    const { b } = brakes();
    for (let i = 0; i < 2; i++) b.failed('10.0.0.1', 'alice@x');
    b.succeeded('alice@x');
    b.failed('10.0.0.1', 'alice@x');
    assert.equal(b.blocked('10.0.0.2', 'alice@x'), undefined);
    for (let i = 0; i < 2; i++) b.failed('10.0.0.1', `o${i}@x`);
    assert.equal(b.blocked('10.0.0.1', 'zed@x'), 'address');
  });

  it('delays failures but caps the sockets held in the delay', async () => {
    const { b, release, sleeps } = brakes();
    const held = [b.delay(), b.delay(), b.delay()];
    await Promise.resolve();
    assert.equal(b.waiting, 3);
    assert.equal(sleeps.length, 3);
    assert.equal(await b.delay(), false, 'the fourth is answered at once (and closed)');
    release();
    assert.deepEqual(await Promise.all(held), [true, true, true]);
    assert.equal(b.waiting, 0);
  });

  it('forgets the oldest entries beyond maxTracked', () => {
    const { b } = brakes({ maxTracked: 10 });
    for (let i = 0; i < 1000; i++) b.failed(`10.0.${i >> 8}.${i & 255}`, `u${i}@x`);
    assert.deepEqual(b.tracked, { addresses: 10, accounts: 10 });
  });
});
