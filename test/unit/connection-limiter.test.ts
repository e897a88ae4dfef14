import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConnectionLimiter } from '../../src/core/listen/connection-limiter.js';
import { clientKey, unmapIpv4 } from '../../src/core/net-address.js';

describe('clientKey', () => {
  it('keys IPv4 by address and IPv4-mapped IPv6 as the IPv4 client', () => {
    assert.equal(clientKey('192.0.2.7'), '192.0.2.7');
    assert.equal(clientKey('::ffff:192.0.2.7'), '192.0.2.7');
    assert.equal(clientKey('::FFFF:192.0.2.7'), '192.0.2.7');
    assert.equal(clientKey('::ffff:c000:207'), '192.0.2.7');
    assert.equal(unmapIpv4('::ffff:192.0.2.7'), '192.0.2.7');
    assert.equal(unmapIpv4(undefined), 'unknown');
  });

  it('keys IPv6 by its /64, whatever the notation', () => {
    const k = '2001:db8:0:1::/64';
    assert.equal(clientKey('2001:db8:0:1::1'), k);
    assert.equal(clientKey('2001:db8:0:1:ffff:ffff:ffff:ffff'), k);
    assert.equal(clientKey('2001:0DB8:0000:0001:abcd::9'), k);
    assert.equal(clientKey('2001:db8:0:1::7%eth0'), k);
    assert.equal(clientKey('2001:db8:0:1::192.0.2.1'), k);
    assert.notEqual(clientKey('2001:db8:0:2::1'), k);
    assert.equal(clientKey('::1'), '0:0:0:0::/64');
    assert.equal(clientKey('64:ff9b::192.0.2.1'), '64:ff9b:0:0::/64');
  });

  it('leaves what is no IP address alone', () => {
    assert.equal(clientKey('unknown'), 'unknown');
    assert.equal(clientKey(''), '');
  });
});

describe('ConnectionLimiter', () => {
  it('limits total and per address; a release counts once', () => {
    const l = new ConnectionLimiter(() => ({ maxTotal: 3, maxPerAddress: 2 }));
    const a1 = l.acquire('a');
    const a2 = l.acquire('a');
    assert.ok(a1 && a2);
    assert.equal(l.acquire('a'), undefined);
    const b1 = l.acquire('b');
    assert.ok(b1);
    assert.equal(l.acquire('c'), undefined, 'total reached');
    a1();
    a1();
    assert.equal(l.open, 2);
    assert.ok(l.acquire('c'));
  });

  it('counts every address of one IPv6 /64 as one client', () => {
    const l = new ConnectionLimiter(() => ({ maxTotal: 100, maxPerAddress: 5 }));
    const held = [];
    for (let i = 1; i <= 5; i++) held.push(l.acquire(`2001:db8:0:1::${i.toString(16)}`));
    assert.ok(held.every(Boolean));
    assert.equal(l.acquire('2001:db8:0:1:dead:beef:0:1'), undefined, 'same /64, other /128');
    assert.ok(l.acquire('2001:db8:0:2::1'), 'another /64');
    assert.equal(l.openFor('2001:db8:0:1::99'), 5);
    held[0]!();
    assert.ok(l.acquire('2001:db8:0:1:dead:beef:0:1'));
  });

  it('counts an IPv4-mapped address with its IPv4 client', () => {
    const l = new ConnectionLimiter(() => ({ maxTotal: 100, maxPerAddress: 1 }));
    assert.ok(l.acquire('192.0.2.9'));
    assert.equal(l.acquire('::ffff:192.0.2.9'), undefined);
  });
});
