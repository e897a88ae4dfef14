/**
 * What the relay log keeps of a message: Message-ID, a Subject hash and the hints that a
 * message is automatic (lists, bulk, auto-replies), read from the header section only.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { HeaderCollector, messageFacts, parseHeaders } from '../../src/core/smtp/relay-log.js';

function collect(text: string, chunk = 7, max = 64 * 1024): Map<string, string[]> {
  const h = new HeaderCollector(max);
  const buf = Buffer.from(text, 'utf8');
  for (let i = 0; i < buf.length; i += chunk) h.push(buf.subarray(i, i + chunk));
  return h.headers();
}

describe('relay log message facts', () => {
  it('reads folded headers up to the empty line, whatever the chunking', () => {
    const h = collect(
      'Subject: hello\r\n  world\r\nMessage-ID: <a@b>\r\n\r\nSubject: not a header\r\n',
    );
    assert.deepEqual(h.get('subject'), ['hello world']);
    assert.deepEqual(h.get('message-id'), ['<a@b>']);
  });

  it('hashes the Subject and keeps the Message-ID', () => {
    const f = messageFacts(parseHeaders('Subject: Quarterly report\nMessage-ID: <x@y>'), 'a@b');
    assert.equal(f.messageId, '<x@y>');
    assert.equal(
      f.subjectHash,
      createHash('sha256').update('Quarterly report').digest('hex').slice(0, 16),
    );
    assert.deepEqual(f.auto, []);
  });

  it('flags lists, bulk, auto-submitted, vacation and the null sender', () => {
    const list = messageFacts(
      parseHeaders('List-Id: Team <team.example.org>\r\nPrecedence: list'),
      'owner@example.org',
    );
    assert.deepEqual(list.auto, ['precedence', 'list']);
    assert.equal(list.listId, 'Team <team.example.org>');
    const vac = messageFacts(
      parseHeaders('Auto-Submitted: auto-replied\r\nSubject: Out of office'),
      '',
    );
    assert.deepEqual(vac.auto, ['auto-submitted', 'vacation', 'null-sender']);
    const bulk = messageFacts(parseHeaders('Precedence: bulk\r\nAuto-Submitted: no'), 'x@y');
    assert.deepEqual(bulk.auto, ['precedence']);
    assert.deepEqual(messageFacts(parseHeaders('X-Autoreply: yes'), 'x@y').auto, ['vacation']);
    assert.deepEqual(messageFacts(parseHeaders('Subject: Automatic reply: meeting'), 'x@y').auto, [
      'vacation',
    ]);
  });

  it('stops collecting at its byte limit', () => {
    const h = collect(`Subject: ${'x'.repeat(100)}\r\nMessage-ID: <late@x>\r\n\r\n`, 16, 50);
    assert.equal(h.get('message-id'), undefined);
  });
});
