import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { filterFlags, flagKey, flagPolicy } from '../../src/core/transfer/copy/flags.js';
import {
  AdaptiveLimit,
  Backoff,
  DEFAULT_THROTTLE_DELAY_MS,
  parseThrottle,
} from '../../src/core/transfer/copy/throttle.js';
import { parseInternalDate } from '../../src/core/transfer/copy/verify.js';

describe('flags filtered to PERMANENTFLAGS', () => {
  test('keywords only with \\*; \\Recent never; dropped ones reported', () => {
    const noKw = flagPolicy(['\\Seen', '\\Answered', '\\Flagged', '\\Deleted', '\\Draft']);
    assert.deepEqual(filterFlags(['\\Seen', '\\Recent', '$Forwarded', 'project-x'], noKw), {
      kept: ['\\Seen'],
      dropped: ['$Forwarded', 'project-x'],
    });
    const all = flagPolicy(['\\Seen', '\\Deleted', '\\*']);
    assert.deepEqual(filterFlags(['\\seen', '\\Recent', '$Forwarded'], all), {
      kept: ['\\Seen', '$Forwarded'],
      dropped: [],
    });
  });

  test('a system flag the destination does not keep is dropped; listed keywords pass', () => {
    const p = flagPolicy(['\\Seen', '$Junk']);
    assert.deepEqual(filterFlags(['\\Flagged', '$junk', 'other'], p), {
      kept: ['$junk'],
      dropped: ['\\Flagged', 'other'],
    });
  });

  test('no PERMANENTFLAGS means everything is permanent (RFC 3501 7.1), but not \\Recent', () => {
    assert.deepEqual(filterFlags(['\\Recent', 'kw', '\\Draft'], flagPolicy(null)), {
      kept: ['kw', '\\Draft'],
      dropped: [],
    });
  });

  test('keywords that are not atoms are dropped', () => {
    assert.deepEqual(filterFlags(['bad kw', 'a(b', 'ok'], flagPolicy(null)).dropped, [
      'bad kw',
      'a(b',
    ]);
  });

  test('flagKey is canonical: sorted, system flags spelled once, \\Recent gone', () => {
    assert.equal(flagKey(['\\seen', 'b', '\\Recent', 'A', '\\Seen']), '\\Seen A b');
  });
});

describe('throttling', () => {
  test('Exchange: Suggested Backoff Time', () => {
    assert.deepEqual(
      parseThrottle('NO Request is throttled. Suggested Backoff Time: 5432 milliseconds'),
      { delayMs: 5432 },
    );
  });
  test('Gmail: [THROTTLED]', () => {
    assert.deepEqual(parseThrottle('[THROTTLED] Too many simultaneous connections'), {
      delayMs: DEFAULT_THROTTLE_DELAY_MS,
    });
  });
  test('ordinary refusals are not throttling', () => {
    assert.equal(parseThrottle('[LIMIT] Mail size is too large'), null);
    assert.equal(parseThrottle('[OVERQUOTA] Quota exceeded'), null);
  });
  test('back-off grows, honours a larger suggestion, and gives up', () => {
    const b = new Backoff({ baseMs: 100, maxMs: 1000, maxAttempts: 3, random: () => 1 });
    assert.equal(b.next(), 100);
    assert.equal(b.next(), 200);
    assert.equal(b.next(5000), 5000);
    assert.equal(b.exhausted, true);
  });
  test('concurrency halves on throttling and grows back slowly', () => {
    const l = new AdaptiveLimit(4, 2);
    l.throttled();
    assert.equal(l.value, 2);
    l.throttled();
    l.throttled();
    assert.equal(l.value, 1);
    l.succeeded();
    l.succeeded();
    assert.equal(l.value, 2);
  });
});

describe('INTERNALDATE', () => {
  test('compared as instants, zones applied', () => {
    assert.equal(parseInternalDate('17-Jul-1996 02:44:25 -0700'), Date.UTC(1996, 6, 17, 9, 44, 25));
    assert.equal(
      parseInternalDate(' 7-Jan-2024 10:00:00 +0100'),
      parseInternalDate('07-Jan-2024 09:00:00 +0000'),
    );
    assert.ok(Number.isNaN(parseInternalDate('yesterday')));
  });
});
