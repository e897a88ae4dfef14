/** proxyProtocol: which listeners sit behind a load balancer, and which proxies are trusted. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfigText } from '../../src/core/config/index.js';
import { renderTemplate } from '../../src/core/config/template.js';
import { parseMinimal, refusal as refusalOf } from './config-fixtures.js';

/** the listeners every config here has */
const LISTEN = 'listen: { imap: "0.0.0.0:143", submission: "0.0.0.0:587" }\n';
const load = (extra: string) => parseMinimal(LISTEN + extra);
const refusal = (extra: string) => refusalOf(LISTEN + extra);

describe('proxyProtocol config', () => {
  it('is off unless set', () => {
    assert.equal(load('').proxyProtocol, undefined);
  });

  it('takes listeners and trusted addresses and blocks', () => {
    const c = load(
      'proxyProtocol: { listeners: [imap, submission], trusted: ["127.0.0.1", "10.0.0.0/8", "2001:db8::/32"] }',
    );
    assert.deepEqual(c.proxyProtocol, {
      listeners: ['imap', 'submission'],
      trusted: ['127.0.0.1', '10.0.0.0/8', '2001:db8::/32'],
    });
  });

  it('names the key and what is wrong', () => {
    const text = refusal(
      'proxyProtocol: { listeners: [imap, imap4], trusted: ["10.0.0.0/33", "proxy.example.org"] }',
    );
    assert.match(text, /proxyProtocol\.listeners\[1\]: .*must be one of imap, imaps/);
    assert.match(
      text,
      /proxyProtocol\.trusted\[0\]: .*10\.0\.0\.0\/33.*prefix length must be 0-32/,
    );
    assert.match(text, /proxyProtocol\.trusted\[1\]: .*not an IP address or block/);
    assert.match(
      refusal('proxyProtocol: { listeners: [imap] }'),
      /proxyProtocol\.trusted: .*required/,
    );
    assert.match(
      refusal('proxyProtocol: { listeners: [], trusted: [] }'),
      /proxyProtocol\.listeners: .*is empty[\s\S]*proxyProtocol\.trusted: .*is empty/,
    );
    assert.match(
      refusal('proxyProtocol: { listeners: [pop3], trusted: ["127.0.0.1"] }'),
      /proxyProtocol\.listeners: .*pop3.*listen\.pop3 is not set/,
    );
    assert.match(
      refusal('proxyProtocol: { listeners: [imap], trusted: ["127.0.0.1"], auto: true }'),
      /proxyProtocol/,
    );
  });

  it('the template shows it, commented out, and still loads', () => {
    const t = renderTemplate({ state: 'state.json', keyFile: 'autoport.key' });
    const line = t.split('\n').find((l) => l.startsWith('# proxyProtocol:'));
    assert.ok(line, 'the template documents proxyProtocol');
    const uncommented = t.replace(line, line.slice(2));
    const c = parseConfigText(uncommented, '/etc/autoport/autoport.yaml', {});
    assert.deepEqual(c.proxyProtocol?.listeners, ['imap', 'submission']);
  });
});
