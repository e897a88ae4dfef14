/**
 * Properties of the UIDL matcher's header hash (src/core/transfer/uidl/header-hash.ts), a
 * reader of TOP n 0 replies from both servers: it never throws on any bytes, and the same
 * header gives the same hash whatever the line ends and whatever body follows it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { headerHash } from '../../../src/core/transfer/uidl/header-hash.js';
import { check, tokenStream } from './support.js';

const TOKENS = ['Subject:', 'Status: RO', 'X-UID: 1', ' ', '\t', '\r\n', '\n', 'a', '\xe9', ':'];

describe('header hash', () => {
  it('never throws; line ends and the body after the blank line do not count', () => {
    check(
      fc.property(tokenStream(TOKENS), fc.uint8Array({ maxLength: 40 }), (bytes, body) => {
        const header = bytes.toString('latin1').replace(/\r?\n(\r?\n)+/g, '\r\n');
        const crlf = Buffer.from(`${header}\r\n\r\n`, 'latin1');
        const h = headerHash(crlf);
        assert.match(h, /^[0-9a-f]{32}$/);
        const lf = Buffer.from(`${header.replace(/\r\n/g, '\n')}\n\n`, 'latin1');
        assert.equal(headerHash(lf), h);
        assert.equal(headerHash(Buffer.concat([crlf, Buffer.from(body)])), h);
      }),
    );
  });
});
