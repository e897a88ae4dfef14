import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeMUtf7,
  encodeMUtf7,
  isValidMUtf7,
  MUtf7Error,
} from '../../src/core/transfer/folders/mutf7.js';

const VECTORS: Array<[string, string]> = [
  ['INBOX', 'INBOX'],
  ['&', '&-'],
  ['a&b', 'a&-b'],
  ['&&', '&-&-'],
  ['Entw\u00fcrfe', 'Entw&APw-rfe'],
  ['\u65e5\u672c\u8a9e', '&ZeVnLIqe-'],
  // RFC 3501 5.1.3's own example
  ['~peter/mail/\u53f0\u5317/\u65e5\u672c\u8a9e', '~peter/mail/&U,BTFw-/&ZeVnLIqe-'],
  // non-BMP: U+1F600 is the surrogate pair D83D DE00
  ['\u{1F600}', '&2D3eAA-'],
  ['a\u{1F600}b\u00e4', 'a&2D3eAA-b&AOQ-'],
  ['\u00c9l\u00e9ments envoy\u00e9s', '&AMk-l&AOk-ments envoy&AOk-s'],
  ['Gel\u00f6schte Elemente', 'Gel&APY-schte Elemente'],
  // control characters are not printable ASCII, so they are BASE64 encoded
  ['tab\there', 'tab&AAk-here'],
  ['', ''],
];

test('known vectors encode and decode both ways', () => {
  for (const [unicode, wire] of VECTORS) {
    assert.equal(encodeMUtf7(unicode), wire, `encode ${JSON.stringify(unicode)}`);
    assert.equal(decodeMUtf7(wire), unicode, `decode ${wire}`);
    assert.ok(isValidMUtf7(wire));
  }
});

test('random names round-trip (seeded)', () => {
  let seed = 12345;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const pool = [
    'a',
    'Z',
    ' ',
    '&',
    '-',
    '/',
    '.',
    '\u00e4',
    '\u00df',
    '\u65e5',
    '\u0416',
    '\u{1F600}',
    '\u{10348}',
    '\u0001',
    '\u007f',
  ];
  for (let i = 0; i < 2000; i++) {
    let s = '';
    const len = rand(12);
    for (let k = 0; k < len; k++) s += pool[rand(pool.length)];
    const wire = encodeMUtf7(s);
    assert.match(wire, /^[\x20-\x7e]*$/);
    assert.equal(decodeMUtf7(wire), s);
  }
});

const INVALID: Array<[string, RegExp]> = [
  ['&', /without a closing/],
  ['&ZeVnLIqe', /without a closing/],
  ['&AGE-', /printable ASCII/], // "a" must not be BASE64 encoded
  ['&AOQ-&AOQ-', /canonical/], // two runs where an encoder writes one
  ['\u00e4', /outside printable US-ASCII/], // raw 8-bit
  ['a\tb', /outside printable US-ASCII/],
  ['&2D0-', /surrogate/], // lone high surrogate
  ['&3gA-', /surrogate/], // lone low surrogate
  ['&A-', /truncated or badly padded/], // 6 bits cannot hold a UTF-16 unit
  ['&AOQx-', /truncated or badly padded/],
  ['&AOR-', /truncated or badly padded/], // non-zero padding bits
  ['&AO/-', /inside a modified BASE64 run/], // "/" is "," in modified BASE64
  ['&AO=-', /inside a modified BASE64 run/],
];

test('invalid wire names are rejected with a reason', () => {
  for (const [wire, why] of INVALID) {
    assert.throws(
      () => decodeMUtf7(wire),
      (err: unknown) => err instanceof MUtf7Error && why.test(err.message),
      `expected ${JSON.stringify(wire)} to be rejected with ${why}`,
    );
    assert.equal(isValidMUtf7(wire), false);
  }
});

test('encoding refuses lone surrogates', () => {
  assert.throws(() => encodeMUtf7('a\ud800b'), MUtf7Error);
  assert.throws(() => encodeMUtf7('\udc00'), MUtf7Error);
});
