/**
 * The UIDL continuity matcher (src/core/transfer/uidl/match.ts) and its header hash: a
 * message pairs with its copy by (size, header hash); a pair several messages share is
 * ambiguous (kept, counted); a source UIDL another destination message shows is refused.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { headerHash } from '../../src/core/transfer/uidl/header-hash.js';
import { matchUidls, type Pop3Message } from '../../src/core/transfer/uidl/match.js';

const msg = (uidl: string, size: number, hash: string): Pop3Message => ({ uidl, size, hash });

describe('matchUidls', () => {
  it('pairs each destination message with the one source message of its size and hash', () => {
    const m = matchUidls(
      [msg('s1', 100, 'a'), msg('s2', 200, 'b'), msg('s3', 100, 'c')],
      [msg('d3', 100, 'c'), msg('d1', 100, 'a'), msg('d2', 200, 'b')],
    );
    assert.deepEqual(
      new Map(m.pairs),
      new Map([
        ['d1', 's1'],
        ['d2', 's2'],
        ['d3', 's3'],
      ]),
    );
    assert.deepEqual([m.matched, m.ambiguous, m.unmatched], [3, 0, 0]);
  });

  it('two messages with the same size and header hash: unmatched and counted', () => {
    const m = matchUidls(
      [msg('s1', 100, 'a'), msg('s2', 100, 'a'), msg('s3', 300, 'c')],
      [msg('d1', 100, 'a'), msg('d2', 100, 'a'), msg('d3', 300, 'c')],
    );
    assert.deepEqual(m.pairs, [['d3', 's3']]);
    assert.deepEqual([m.matched, m.ambiguous, m.unmatched], [1, 2, 0]);
  });

  it('ambiguous on one side only is still ambiguous', () => {
    const m = matchUidls([msg('s1', 100, 'a'), msg('s2', 100, 'a')], [msg('d1', 100, 'a')]);
    assert.deepEqual(m.pairs, []);
    assert.equal(m.ambiguous, 1);
  });

  it('same size, other header: not a match; new messages count as unmatched', () => {
    const m = matchUidls([msg('s1', 100, 'a')], [msg('d1', 100, 'b'), msg('d2', 50, 'a')]);
    assert.deepEqual(m.pairs, []);
    assert.deepEqual([m.matched, m.ambiguous, m.unmatched], [0, 0, 2]);
  });

  it('equal UIDLs need no rewriting but count as matched', () => {
    const m = matchUidls([msg('u1', 100, 'a')], [msg('u1', 100, 'a')]);
    assert.deepEqual(m.pairs, []);
    assert.equal(m.matched, 1);
  });

  it('a source UIDL that another kept destination message shows is refused (RFC 1939 7)', () => {
    const m = matchUidls([msg('x', 100, 'a')], [msg('d1', 100, 'a'), msg('x', 9, 'new')]);
    assert.deepEqual(m.pairs, []);
    assert.deepEqual([m.matched, m.ambiguous, m.unmatched], [0, 1, 1]);
  });
});

describe('headerHash', () => {
  const base =
    'From: a@example.org\r\nSubject: Hello\r\n there\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\n';
  it('counts the header only, whatever the line ends, white space and server-added fields', () => {
    const h = headerHash(Buffer.from(base + 'body\r\n'));
    assert.equal(headerHash(Buffer.from(base)), h);
    assert.equal(headerHash(Buffer.from(base.replace(/\r\n/g, '\n') + 'other body')), h);
    assert.equal(headerHash(Buffer.from(`Status: RO\r\nX-UID: 7\r\n${base}`)), h);
    assert.equal(headerHash(Buffer.from(`Return-Path: <a@example.org>\r\n${base}`)), h);
    assert.equal(headerHash(Buffer.from(base.replace('Subject: Hello', 'Subject:  Hello\t'))), h);
  });
  it('8-bit bytes even out with the "?" some servers put instead', () => {
    const a = headerHash(Buffer.from('Subject: caf\xe9\r\n\r\n', 'latin1'));
    assert.equal(headerHash(Buffer.from('Subject: caf?\r\n\r\n')), a);
  });
  it('another header field or value is another hash', () => {
    const h = headerHash(Buffer.from(base));
    assert.notEqual(headerHash(Buffer.from(base.replace('Hello', 'Hullo'))), h);
    assert.notEqual(headerHash(Buffer.from(`X-Other: 1\r\n${base}`)), h);
    assert.notEqual(headerHash(Buffer.from(base.replace(' there', ' thereby'))), h);
  });
});
