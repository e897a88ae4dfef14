/** The gateway and smtp sections: defaults, accepted values, and errors that name the key. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../src/core/config/index.js';
import { parseMinimal } from './config-fixtures.js';

describe('gateway and smtp config', () => {
  it('defaults: log in as the user, forward the client address to both sides, 50 MiB', () => {
    const c = parseMinimal('');
    assert.deepEqual(c.gateway, {
      destinationLogin: 'user',
      forwardClient: { source: true, destination: true },
    });
    assert.equal(c.smtp?.maxMessageBytes, 50 * 1024 * 1024);
  });

  it('takes explicit values', () => {
    const c = parseMinimal(`
gateway: { plaintextLogin: never, destinationLogin: master, forwardClient: { source: false } }
smtp: { maxMessageBytes: 1048576 }
`);
    assert.equal(c.gateway?.plaintextLogin, 'never');
    assert.equal(c.gateway?.destinationLogin, 'master');
    assert.deepEqual(c.gateway?.forwardClient, { source: false, destination: true });
    assert.equal(c.smtp?.maxMessageBytes, 1048576);
  });

  it('names the key and what is wrong', () => {
    const err = (() => {
      try {
        parseMinimal(`
gateway: { plaintextLogin: sometimes, forwardClient: { source: yes-please } }
smtp: { maxMessageBytes: 0 }
`);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    assert.ok(err instanceof ConfigError, 'the config must be refused');
    const text = err.lines.join('\n');
    assert.match(text, /gateway\.plaintextLogin: .*sometimes.*must be always, loopback/);
    assert.match(text, /gateway\.forwardClient\.source: .*must be true or false/);
    assert.match(text, /smtp\.maxMessageBytes: .*must be at least 1/);
  });
});
