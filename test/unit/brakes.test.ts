import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Brakes, type Attempt, type BrakeDeps } from '../../src/core/login/brakes.js';
import { DEFAULT_LIMITS, type BrakeLimits } from '../../src/core/limits.js';
import { AddressBlocks } from '../../src/core/net-address.js';

function brakes(
  over: Partial<BrakeLimits> = {},
  cluster?: BrakeDeps['cluster'],
  newsBatchMs = 0,
  trusted: string[] = [],
) {
  let now = 1_000_000;
  const sleeps: Array<() => void> = [];
  const delays: number[] = [];
  const b = new Brakes(
    {
      ...DEFAULT_LIMITS.brakes,
      failureDelayMs: 2000,
      maxFailureDelayMs: 15_000,
      maxDelayedSockets: 3,
      maxFailuresPerAddress: 5,
      maxFailuresPerAccount: 3,
      slowAccountAfter: 4,
      maxConcurrentPerAddress: 4,
      maxConcurrentPerAccount: 6,
      windowMs: 60_000,
      maxTracked: 100,
      ...over,
    },
    {
      ...(cluster ? { cluster } : {}),
      newsBatchMs,
      trusted: AddressBlocks.parse('brakes.trusted', trusted),
      now: () => now,
      sleep: (ms) =>
        new Promise<void>((wake) => {
          delays.push(ms);
          sleeps.push(wake);
        }),
    },
  );
  return {
    b,
    advance: (ms: number) => (now += ms),
    release: () => sleeps.splice(0).forEach((wake) => wake()),
    sleeps,
    delays,
  };
}
type Rig = ReturnType<typeof brakes>;
type Begun = ReturnType<Brakes['begin']>;

function started(r: Begun): Attempt {
  assert.ok(!('refused' in r), `refused: ${'refused' in r ? r.refused : ''}`);
  return r as Attempt;
}
function refusal(r: Begun): string | undefined {
  return 'refused' in r ? r.refused : undefined;
}
/** one wrong password, its delay waived at once (the fake timer) */
async function fail(t: Rig, ip: string, account: string): Promise<void> {
  const p = started(t.b.begin(ip, account)).failed();
  t.release();
  await p;
}

describe('brakes: a burst from one address', () => {
  it('waits for room under the concurrency caps instead of refusing, in turn', async () => {
    const t = brakes({ maxFailuresPerAddress: 100, maxFailuresPerAccount: 100 });
    const first = await Promise.all([1, 2, 3, 4].map((i) => t.b.admit('10.0.0.1', `u${i}@x`)));
    const waiting = [5, 6].map((i) => t.b.admit('10.0.0.1', `u${i}@x`));
    await new Promise((r) => setImmediate(r));
    assert.equal(t.b.queued, 2, 'the fifth and sixth wait');
    started(first[0]!).succeeded();
    const fifth = started(await Promise.race(waiting));
    assert.equal(t.b.queued, 1, 'one slot freed: one more is let through');
    started(first[1]!).end();
    started((await Promise.all(waiting))[1]!);
    fifth.end();
    assert.equal(t.b.inFlight, 3, 'the third, fourth and sixth');
  });

  it('refuses (concurrency, not failures) when no room comes within the wait', async () => {
    const t = brakes({
      maxFailuresPerAddress: 100,
      maxFailuresPerAccount: 100,
      concurrencyWaitMs: 20,
    });
    for (const i of [1, 2, 3, 4]) started(await t.b.admit('10.0.0.1', `u${i}@x`));
    assert.equal(refusal(await t.b.admit('10.0.0.1', 'u5@x')), 'address-concurrency');
    assert.equal(t.b.queued, 0);
  });

  it('does not wait when too many attempts already wait', async () => {
    const t = brakes({
      maxFailuresPerAddress: 100,
      maxFailuresPerAccount: 100,
      maxWaitingAttempts: 0,
    });
    for (const i of [1, 2, 3, 4]) started(await t.b.admit('10.0.0.1', `u${i}@x`));
    assert.equal(refusal(await t.b.admit('10.0.0.1', 'u5@x')), 'address-concurrency');
  });
});

describe('brakes', () => {
  it('counts attempts in flight: parallel guesses from one address cannot all pass', () => {
    const { b } = brakes({ maxConcurrentPerAddress: 100, maxConcurrentPerAccount: 100 });
    const begun = Array.from({ length: 50 }, (_, i) => b.begin('10.0.0.1', `u${i}@x`));
    assert.equal(begun.filter((r) => !('refused' in r)).length, 5, 'maxFailuresPerAddress');
    assert.equal(refusal(begun[49]!), 'address');
    const same = Array.from({ length: 10 }, () => b.begin('10.0.0.2', 'alice@x'));
    assert.equal(same.filter((r) => !('refused' in r)).length, 3, 'maxFailuresPerAccount (pair)');
    assert.equal(refusal(same[9]!), 'account-address');
  });

  it('caps concurrent attempts per address and per account; ending one frees its slot', () => {
    const { b } = brakes({ maxFailuresPerAddress: 100, maxFailuresPerAccount: 100 });
    const a = [1, 2, 3, 4].map((i) => started(b.begin('10.0.0.1', `u${i}@x`)));
    assert.equal(refusal(b.begin('10.0.0.1', 'u5@x')), 'address-concurrency');
    a[0]!.succeeded();
    started(b.begin('10.0.0.1', 'u5@x'));
    const acct = [2, 3, 4, 5, 6, 7].map((i) => started(b.begin(`10.0.1.${i}`, 'bob@x')));
    assert.equal(refusal(b.begin('10.0.1.9', 'bob@x')), 'account-concurrency');
    acct[0]!.end();
    started(b.begin('10.0.1.9', 'bob@x'));
    assert.equal(b.inFlight, 4 + 6);
  });

  it("failures brake the guessing address, never the owner's right password elsewhere", async () => {
    const t = brakes();
    for (let i = 0; i < 3; i++) await fail(t, '10.0.0.66', 'alice@x');
    assert.equal(refusal(t.b.begin('10.0.0.66', 'ALICE@X')), 'account-address');
    for (let i = 0; i < 2; i++) await fail(t, '10.0.0.66', `other${i}@x`);
    assert.equal(refusal(t.b.begin('10.0.0.66', 'fresh@x')), 'address');
    // twenty addresses failing for alice: her own address still gets in
    for (let i = 0; i < 20; i++) await fail(t, `10.9.0.${i}`, 'alice@x');
    started(t.b.begin('192.0.2.7', 'alice@x')).succeeded();
    t.advance(60_000);
    started(t.b.begin('10.0.0.66', 'alice@x'));
  });

  it('an IPv6 client is one /64', async () => {
    const t = brakes();
    for (let i = 1; i <= 5; i++) await fail(t, `2001:db8:0:1::${i}`, `u${i}@x`);
    assert.equal(refusal(t.b.begin('2001:db8:0:1:ffff::9', 'new@x')), 'address');
    started(t.b.begin('2001:db8:0:2::1', 'new@x'));
  });

  it('the delay doubles per failure of the address up to the cap; an account under attack gets the cap', async () => {
    const t = brakes({
      maxFailuresPerAddress: 100,
      maxFailuresPerAccount: 100,
      maxFailureDelayMs: 10_000,
    });
    for (let i = 0; i < 5; i++) await fail(t, '10.0.0.1', `u${i}@x`);
    assert.deepEqual(t.delays.splice(0), [2000, 4000, 8000, 10_000, 10_000]);
    for (let i = 0; i < 6; i++) await fail(t, `10.0.2.${i}`, 'carol@x');
    assert.deepEqual(t.delays.splice(0), [2000, 2000, 2000, 2000, 10_000, 10_000]);
    await fail(t, '10.0.3.1', 'dave@x');
    assert.deepEqual(t.delays, [2000], 'other accounts from other addresses: the base delay');
  });

  it('a success forgets the pair, not the address', async () => {
    const t = brakes();
    for (let i = 0; i < 2; i++) await fail(t, '10.0.0.1', 'alice@x');
    started(t.b.begin('10.0.0.1', 'alice@x')).succeeded();
    await fail(t, '10.0.0.1', 'alice@x');
    started(t.b.begin('10.0.0.1', 'alice@x')).end();
    for (let i = 0; i < 2; i++) await fail(t, '10.0.0.1', `o${i}@x`);
    assert.equal(refusal(t.b.begin('10.0.0.1', 'zed@x')), 'address');
  });

  it('an attempt ends once: later calls count nothing more', async () => {
    const t = brakes();
    const a = started(t.b.begin('10.0.0.1', 'alice@x'));
    const p = a.failed();
    a.end();
    a.succeeded();
    t.release();
    assert.equal(await p, true);
    assert.equal(await a.failed(), true, 'a second failed() neither counts nor waits');
    assert.equal(t.b.inFlight, 0);
    started(t.b.begin('10.0.0.1', 'alice@x')).end();
    await fail(t, '10.0.0.1', 'alice@x');
    started(t.b.begin('10.0.0.1', 'alice@x'));
    assert.equal(
      refusal(t.b.begin('10.0.0.1', 'alice@x')),
      'account-address',
      '2 failed + 1 in flight',
    );
  });

  it('caps the sockets held in the delay', async () => {
    const t = brakes({ maxFailuresPerAddress: 100, maxFailuresPerAccount: 100 });
    const held = [1, 2, 3].map((i) => started(t.b.begin(`10.0.0.${i}`, 'a@x')).failed());
    await Promise.resolve();
    assert.equal(t.b.waiting, 3);
    assert.equal(
      await started(t.b.begin('10.0.0.4', 'a@x')).failed(),
      false,
      'the fourth is answered at once (and closed)',
    );
    t.release();
    assert.deepEqual(await Promise.all(held), [true, true, true]);
    assert.equal(t.b.waiting, 0);
  });

  it('forgets the oldest entries beyond maxTracked', async () => {
    const t = brakes({ maxTracked: 10, maxDelayedSockets: 0 });
    for (let i = 0; i < 1000; i++)
      await started(t.b.begin(`10.0.${i >> 8}.${i & 255}`, `u${i}@x`)).failed();
    assert.deepEqual(t.b.tracked, { addresses: 10, accounts: 10, pairs: 10 });
  });
});

type Listener = (data: unknown, node: string) => void;

/** Two nodes' clusters: what one publishes the other hears (never itself), as PgCluster. */
function linkedClusters() {
  const published: Array<{ node: string; topic: string; data: unknown }> = [];
  const subs = new Map<string, Map<string, Set<Listener>>>();
  const make = (node: string, other: string): NonNullable<BrakeDeps['cluster']> => ({
    publish(topic, data) {
      published.push({ node, topic, data: structuredClone(data) });
      const copy = JSON.parse(JSON.stringify(data)) as unknown; // it crosses as JSON
      for (const fn of subs.get(other)?.get(topic) ?? []) fn(copy, node);
    },
    onMessage(topic, fn) {
      const byTopic = subs.get(node) ?? new Map<string, Set<Listener>>();
      subs.set(node, byTopic);
      const set = byTopic.get(topic) ?? new Set<Listener>();
      byTopic.set(topic, set);
      set.add(fn);
      return () => set.delete(fn);
    },
  });
  return { a: make('A', 'B'), b: make('B', 'A'), published, subs };
}

describe('brakes across nodes', () => {
  it('failures split across two nodes brake the address on both', async () => {
    const link = linkedClusters();
    const A = brakes({}, link.a);
    const B = brakes({}, link.b);
    const ip = '203.0.113.9';
    // five failures (maxFailuresPerAddress), three on A and two on B, on several accounts so
    // that no (account, address) pair reaches its own limit of three
    await fail(A, ip, 'u1@example.org');
    await fail(B, ip, 'u2@example.org');
    await fail(A, ip, 'u3@example.org');
    await fail(B, ip, 'u4@example.org');
    started(A.b.begin(ip, 'u5@example.org')).end(); // four: not yet
    await fail(A, ip, 'u5@example.org');
    assert.equal(refusal(A.b.begin(ip, 'u6@example.org')), 'address');
    assert.equal(refusal(B.b.begin(ip, 'u6@example.org')), 'address');
    // another address is not braked, on either node
    started(A.b.begin('198.51.100.1', 'u6@example.org')).end();
    started(B.b.begin('198.51.100.1', 'u6@example.org')).end();
    // each failure was published once by the node that saw it, keys only
    assert.deepEqual(
      link.published.map((p) => p.node),
      ['A', 'B', 'A', 'B', 'A'],
    );
    assert.deepEqual(link.published[0], {
      node: 'A',
      topic: 'brake',
      data: { a: ip, c: 'u1@example.org' },
    });
    // the window ends on both
    A.advance(60_000);
    B.advance(60_000);
    started(A.b.begin(ip, 'u6@example.org')).end();
    started(B.b.begin(ip, 'u6@example.org')).end();
  });

  it("a pair's failures count on the other node; a success forgets them there too", async () => {
    const link = linkedClusters();
    const A = brakes({}, link.a);
    const B = brakes({}, link.b);
    const ip = '2001:db8:1:2::7'; // its /64 is the key: another address in it is the same
    await fail(A, ip, 'Carol@example.org');
    await fail(B, '2001:db8:1:2::8', 'carol@example.org');
    await fail(A, ip, 'carol@example.org');
    assert.equal(refusal(B.b.begin(ip, 'carol@example.org')), 'account-address');
    // the account's owner from elsewhere is not refused
    started(B.b.begin('192.0.2.1', 'carol@example.org')).end();
    const before = link.published.length;
    // a right password on A (its own attempt was begun before the third failure)
    const A2 = brakes({ maxFailuresPerAccount: 10 }, link.a);
    await fail(A2, ip, 'carol@example.org');
    started(A2.b.begin(ip, 'carol@example.org')).succeeded();
    assert.deepEqual(link.published.slice(before + 1), [
      {
        node: 'A',
        topic: 'brake',
        data: { a: '2001:db8:1:2::/64', c: 'carol@example.org', ok: true },
      },
    ]);
    started(B.b.begin(ip, 'carol@example.org')).end();
  });

  it('failures within 100 ms go as one message; the other node counts every one', async () => {
    const link = linkedClusters();
    const A = brakes({ maxFailuresPerAddress: 1000 }, link.a, 100);
    const B = brakes({ maxFailuresPerAddress: 1000 }, link.b, 100);
    for (let i = 0; i < 60; i++) await fail(A, `198.51.100.${i}`, `u${i}@example.org`);
    assert.equal(link.published.length, 0, 'nothing yet: the batch waits');
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(link.published.length, 1);
    const sent = link.published[0]!.data as { m: unknown[] };
    assert.equal(sent.m.length, 60);
    assert.deepEqual(B.b.tracked, { addresses: 60, accounts: 60, pairs: 60 });
    // a storm bigger than one NOTIFY's payload is cut into several, none over the limit
    for (let i = 0; i < 400; i++)
      await fail(A, `203.0.113.${i & 255}`, `long-user-name-${i}@example.org`);
    A.b.close(); // sends what waits at once
    const batches = link.published.slice(1).map((p) => JSON.stringify(p.data));
    assert.ok(batches.length >= 3, `${batches.length} batches`);
    for (const b of batches) assert.ok(b.length <= 7100, `${b.length} chars`);
    const total = link.published
      .slice(1)
      .reduce((n, p) => n + (p.data as { m: unknown[] }).m.length, 0);
    assert.equal(total, 400);
    B.b.close();
  });

  it('ignores what is not a brake message, and stops hearing once closed', async () => {
    const link = linkedClusters();
    const A = brakes({ maxFailuresPerAddress: 1 }, link.a);
    const B = brakes({ maxFailuresPerAddress: 1 }, link.b);
    for (const junk of [null, 'x', { a: 1, c: 'x' }, { a: 'x'.repeat(600), c: 'y' }])
      link.b.publish('brake', junk);
    started(A.b.begin('203.0.113.1', 'x')).end();
    A.b.close();
    await fail(B, '203.0.113.1', 'x');
    started(A.b.begin('203.0.113.1', 'x')).end();
    assert.equal(refusal(B.b.begin('203.0.113.1', 'x')), 'address');
  });
});

/** brakes.trusted: a webmail host (192.0.2.10), an office network, an IPv6 site */
const TRUSTED = ['192.0.2.10', '10.1.0.0/16', '2001:db8::/48'];

describe('brakes: trusted networks (login_trusted_networks)', () => {
  it('failures of many accounts from a trusted address never refuse it, nor escalate its delay', async () => {
    const t = brakes({}, undefined, 0, TRUSTED);
    for (let i = 0; i < 12; i++) await fail(t, '192.0.2.10', `u${i}@x`);
    assert.deepEqual(t.delays.splice(0), new Array<number>(12).fill(2000), "each pair's first");
    started(t.b.begin('192.0.2.10', 'right@x')).succeeded();
    // the same from an address that is not trusted: refused after five, delays doubling
    for (let i = 0; i < 5; i++) await fail(t, '192.0.2.11', `u${i}@x`);
    assert.deepEqual(t.delays, [2000, 4000, 8000, 15_000, 15_000]);
    assert.equal(refusal(t.b.begin('192.0.2.11', 'right@x')), 'address');
  });

  it('a trusted address has no per-address concurrency cap; the account still has its cap', async () => {
    const t = brakes({ maxFailuresPerAccount: 100 }, undefined, 0, TRUSTED);
    const many = Array.from({ length: 20 }, (_, i) => t.b.begin('10.1.2.3', `u${i}@x`));
    many.forEach(started);
    started(await t.b.admit('10.1.2.3', 'late@x'));
    assert.equal(t.b.queued, 0, 'admit did not wait');
    const bob = [1, 2, 3, 4, 5, 6].map(() => started(t.b.begin('10.1.2.3', 'bob@x')));
    assert.equal(refusal(t.b.begin('10.1.2.3', 'bob@x')), 'account-concurrency');
    bob.forEach((a) => a.end());
  });

  it('one account guessed through a trusted address is braked as before', async () => {
    const t = brakes({ maxFailuresPerAccount: 3, slowAccountAfter: 4 }, undefined, 0, TRUSTED);
    for (let i = 0; i < 3; i++) await fail(t, '192.0.2.10', 'alice@x');
    assert.deepEqual(t.delays.splice(0), [2000, 4000, 8000], "doubling with the pair's failures");
    assert.equal(refusal(t.b.begin('192.0.2.10', 'alice@x')), 'account-address');
    // alice guessed from elsewhere too: past slowAccountAfter a trusted address's failures
    // for her get the longest delay
    for (let i = 0; i < 2; i++) await fail(t, `198.51.100.${i}`, 'alice@x');
    t.delays.splice(0);
    await fail(t, '10.1.0.9', 'alice@x');
    assert.deepEqual(t.delays, [15_000]);
  });

  it('matches IPv6 blocks and IPv4-mapped addresses; a block does not trust its neighbours', async () => {
    const t = brakes({}, undefined, 0, TRUSTED);
    for (let i = 0; i < 8; i++) await fail(t, `2001:db8:0:${i}::1`, `u${i}@x`);
    for (let i = 0; i < 8; i++) await fail(t, '::ffff:192.0.2.10', `v${i}@x`);
    started(t.b.begin('2001:db8:0:1::1', 'w@x')).end();
    started(t.b.begin('192.0.2.10', 'w@x')).end();
    for (let i = 0; i < 5; i++) await fail(t, '2001:db8:1::1', `u${i}@x`);
    assert.equal(refusal(t.b.begin('2001:db8:1::1', 'w@x')), 'address', 'outside the /48');
  });

  it("a new list (reload) applies at once; the address's failures were counted all along", async () => {
    const t = brakes({}, undefined, 0, TRUSTED);
    for (let i = 0; i < 6; i++) await fail(t, '192.0.2.10', `u${i}@x`);
    started(t.b.begin('192.0.2.10', 'w@x')).end();
    t.b.setTrusted(AddressBlocks.none);
    assert.equal(refusal(t.b.begin('192.0.2.10', 'w@x')), 'address');
    t.b.setTrusted(AddressBlocks.parse('brakes.trusted', ['192.0.2.0/24']));
    started(t.b.begin('192.0.2.10', 'w@x')).end();
    assert.throws(
      () => AddressBlocks.parse('brakes.trusted', ['192.0.2.0/33']),
      /^Error: brakes\.trusted: 192\.0\.2\.0\/33 prefix length must be 0-32$/,
    );
  });

  it("a trusted address's failures are published; each node applies its own list", async () => {
    const link = linkedClusters();
    const A = brakes({}, link.a, 0, TRUSTED);
    const B = brakes({}, link.b, 0, []);
    for (let i = 0; i < 6; i++) await fail(A, '192.0.2.10', `u${i}@x`);
    assert.deepEqual(link.published[0]?.data, { a: '192.0.2.10', c: 'u0@x' });
    assert.equal(link.published.length, 6);
    started(A.b.begin('192.0.2.10', 'w@x')).end();
    assert.equal(refusal(B.b.begin('192.0.2.10', 'w@x')), 'address', 'B does not trust it');
    // two nodes that both trust it: the pair's failures still add up across them
    const both = linkedClusters();
    const C = brakes({}, both.a, 0, TRUSTED);
    const D = brakes({}, both.b, 0, TRUSTED);
    for (let i = 0; i < 8; i++) await fail(i % 2 ? C : D, '192.0.2.10', `u${i}@x`);
    await fail(C, '192.0.2.10', 'alice@x');
    await fail(D, '192.0.2.10', 'alice@x');
    await fail(C, '192.0.2.10', 'alice@x');
    assert.equal(refusal(D.b.begin('192.0.2.10', 'alice@x')), 'account-address');
    started(D.b.begin('192.0.2.10', 'w@x')).end();
  });
});
