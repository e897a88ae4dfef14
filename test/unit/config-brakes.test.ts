/** brakes.trusted: the client networks exempt from the per-address login brakes. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfigText } from '../../src/core/config/index.js';
import { renderTemplate } from '../../src/core/config/template.js';
import { parseMinimal, refusal as refusalOf } from './config-fixtures.js';

/** the listener every config here has */
const LISTEN = 'listen: { imap: "0.0.0.0:143" }\n';
const load = (extra: string) => parseMinimal(LISTEN + extra);
const refusal = (extra: string) => refusalOf(LISTEN + extra);

describe('brakes config', () => {
  it('trusts no one unless set', () => {
    assert.equal(load('').brakes, undefined);
    assert.deepEqual(load('brakes: {}').brakes, { trusted: [] });
  });

  it('takes addresses and blocks, IPv4 and IPv6', () => {
    const c = load('brakes: { trusted: ["192.0.2.10", "10.1.0.0/16", "2001:db8::/48"] }');
    assert.deepEqual(c.brakes, { trusted: ['192.0.2.10', '10.1.0.0/16', '2001:db8::/48'] });
  });

  it('names the key, the entry and what is wrong', () => {
    const text = refusal('brakes: { trusted: ["10.0.0.0/33", "webmail.example.org", 7] }');
    assert.match(text, /brakes\.trusted\[0\]: .*10\.0\.0\.0\/33.*prefix length must be 0-32/);
    assert.match(
      text,
      /brakes\.trusted\[1\]: .*webmail\.example\.org.*not an IP address or block like 10\.0\.0\.0\/8/,
    );
    assert.match(text, /brakes\.trusted\[2\]: .*must be an address or block string/);
    assert.match(
      refusal('brakes: { trusted: "10.0.0.0/8" }'),
      /brakes\.trusted: .*must be a list of addresses or blocks: \["192\.0\.2\.10"/,
    );
    assert.match(refusal('brakes: { trusted: [], maxFailures: 3 }'), /brakes/);
  });

  it('warns about a block so wide it trusts nearly every client', () => {
    const c = load('brakes: { trusted: ["0.0.0.0/0", "10.0.0.0/8", "::/0", "2001:db8::/32"] }');
    assert.deepEqual(
      (c.warnings ?? []).filter((w) => w.startsWith('brakes.trusted')).map((w) => w.split(':')[0]),
      ['brakes.trusted[0]', 'brakes.trusted[2]'],
    );
    assert.match(
      c.warnings?.[0] ?? '',
      /0\.0\.0\.0\/0 exempts a \/0 .*list only the webmail hosts/,
    );
    assert.equal(load('brakes: { trusted: ["192.0.2.10", "10.1.0.0/16"] }').warnings, undefined);
  });

  it('the template shows it, commented out, and still loads', () => {
    const t = renderTemplate({ state: 'state.json', keyFile: 'autoport.key' });
    const line = t.split('\n').find((l) => l.startsWith('# brakes:'));
    assert.ok(line, 'the template documents brakes.trusted');
    const c = parseConfigText(t.replace(line, line.slice(2)), '/etc/autoport/autoport.yaml', {});
    assert.deepEqual(c.brakes?.trusted, ['192.0.2.10', '10.1.0.0/16', '2001:db8::/48']);
  });
});
