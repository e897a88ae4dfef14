/**
 * Properties of the SASL helpers (src/core/sessions/sasl.ts): strict base64 never throws
 * and gives back what was encoded; PLAIN messages never throw and round-trip.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { decodeSasl, parsePlain } from '../../../src/core/sessions/sasl.js';
import { check } from './support.js';

const b64ish = fc
  .array(fc.constantFrom('A', 'z', '0', '+', '/', '=', '==', 'QQ', ' ', '\n', '-', '_', '\0'), {
    maxLength: 24,
  })
  .map((a) => a.join(''));

describe('fuzz: SASL helpers', () => {
  it('decodeSasl never throws and accepts only base64 of whole quanta', () => {
    check(
      fc.property(fc.oneof(b64ish, fc.string({ unit: 'binary', maxLength: 32 })), (text) => {
        const out = decodeSasl(text);
        if (out === undefined) return;
        if (text === '=') return assert.equal(out.length, 0);
        assert.match(text, /^[A-Za-z0-9+/]+={0,2}$/);
        assert.equal(text.length % 4, 0);
        assert.equal(out.length, (text.length / 4) * 3 - (text.match(/=/g)?.length ?? 0));
      }),
    );
  });

  it('decodeSasl gives back what base64 encoded', () => {
    check(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), (bytes) => {
        const b = Buffer.from(bytes);
        assert.deepEqual(decodeSasl(b.toString('base64')), b);
      }),
    );
  });

  it('parsePlain never throws; authzid NUL user NUL password round-trips', () => {
    const part = fc.string({ unit: 'grapheme', maxLength: 16 }).filter((s) => !s.includes('\0'));
    check(
      fc.property(fc.uint8Array({ maxLength: 48 }), (bytes) => {
        const r = parsePlain(Buffer.from(bytes));
        if (r.ok) assert.notEqual(r.user, '');
      }),
    );
    check(
      fc.property(part, part, fc.boolean(), (user, password, withAuthzid) => {
        const msg = Buffer.from(`${withAuthzid ? user : ''}\0${user}\0${password}`, 'utf8');
        const r = parsePlain(msg);
        if (user === '') return assert.deepEqual(r, { ok: false, why: 'syntax' });
        assert.deepEqual(r, { ok: true, user, password });
      }),
    );
  });
});
