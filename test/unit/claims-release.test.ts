/**
 * A claim's release the database does not take (it is away for a while) is tried again
 * until it is taken, so the account does not stay this node's while the node lives; a new
 * claim of the account here waits for a retry in flight, so it is never released after.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { silentLogger } from '../../src/core/log/logger.js';
import type { Cluster } from '../../src/core/state/types.js';
import { Claims } from '../../src/core/workers/claims.js';

/** A cluster of one node whose database refuses `down` calls, then answers. */
function flakyCluster(down: number) {
  const holders = new Map<string, string>();
  const calls: string[] = [];
  let refuse = down;
  const answer = async <T>(what: string, fn: () => T): Promise<T> => {
    await sleep(5);
    calls.push(what);
    if (refuse > 0) {
      refuse--;
      throw new Error('connection terminated');
    }
    return fn();
  };
  const cluster = {
    claim: (a: string) =>
      answer(`claim ${a}`, () => {
        if (holders.get(a) && holders.get(a) !== 'me') return false;
        holders.set(a, 'me');
        return true;
      }),
    release: (a: string) => answer(`release ${a}`, () => void holders.delete(a)),
  } as unknown as Cluster;
  return { cluster, holders, calls, down: (n: number) => (refuse = n) };
}

describe('Claims: a release the database does not take', () => {
  it('is tried again until it is taken', async () => {
    const f = flakyCluster(0);
    const claims = new Claims(f.cluster, silentLogger, 30);
    assert.equal(await claims.take('a@x.org'), true);
    f.down(3); // the release and the next two retries fail
    await claims.give('a@x.org');
    assert.equal(claims.has('a@x.org'), false, 'not held here: the work is over');
    assert.equal(f.holders.get('a@x.org'), 'me', 'still claimed in the database');
    const start = Date.now();
    while (f.holders.has('a@x.org')) {
      assert.ok(Date.now() - start < 2000, `never released: ${f.calls.join(', ')}`);
      await sleep(10);
    }
    assert.deepEqual(
      f.calls.filter((c) => c.startsWith('release')),
      ['release a@x.org', 'release a@x.org', 'release a@x.org', 'release a@x.org'],
    );
    claims.stop();
  });

  it('a new claim here in between keeps the account: no late release takes it away', async () => {
    const f = flakyCluster(0);
    const claims = new Claims(f.cluster, silentLogger, 30);
    assert.equal(await claims.take('b@x.org'), true);
    f.down(1);
    await claims.give('b@x.org');
    // claimed again before the retry, or while it runs
    await sleep(25);
    assert.equal(await claims.take('b@x.org'), true);
    await sleep(150);
    assert.equal(f.holders.get('b@x.org'), 'me', 'the new claim stands');
    assert.equal(claims.has('b@x.org'), true);
    await claims.give('b@x.org');
    assert.equal(f.holders.has('b@x.org'), false);
    claims.stop();
  });

  it('stops retrying when stopped', async () => {
    const f = flakyCluster(0);
    const claims = new Claims(f.cluster, silentLogger, 20);
    assert.equal(await claims.take('c@x.org'), true);
    f.down(1000);
    await claims.give('c@x.org');
    claims.stop();
    const before = f.calls.length;
    await sleep(120);
    assert.equal(f.calls.length, before);
  });
});
