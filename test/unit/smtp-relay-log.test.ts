/**
 * What the relay log keeps of a message: Message-ID, a Subject hash and the hints that a
 * message is automatic (lists, bulk, auto-replies), read from the header section only.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { HeaderCollector, messageFacts, parseHeaders } from '../../src/core/smtp/message-facts.js';
import {
  openRelayLog,
  readRelayLog,
  RELAY_LOG_FILE,
  type RelayLogEntry,
} from '../../src/core/smtp/relay-log.js';
import { makeTempDir, removeDir } from '../support/index.js';

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

describe('relay log: what the SMTP side writes is what the reports read', () => {
  it('reads back the entries written, and skips lines of another shape', async () => {
    const dir = makeTempDir('relay-log');
    try {
      const entry = (n: number): RelayLogEntry => ({
        time: `2026-11-0${n}T08:00:00.000Z`,
        session: `s${n}`,
        listener: 'smtp',
        client: '192.0.2.1',
        from: 'a@example.net',
        recipients: [{ address: 'b@example.org', reason: 'first-login' }],
        size: 10 * n,
        route: 'source',
        backend: '127.0.0.1:25',
        reply: '250 2.0.0 Ok',
        accepted: true,
        auto: [],
        durationMs: 3,
      });
      const log = await openRelayLog(dir);
      log.record(entry(1));
      await log.flush();
      // another program's line, and an entry of an older shape without its route
      appendFileSync(join(dir, RELAY_LOG_FILE), '{"time":"x","other":true}\n');
      appendFileSync(
        join(dir, RELAY_LOG_FILE),
        `${JSON.stringify({ ...entry(9), route: 'elsewhere' })}\n`,
      );
      log.record(entry(2));
      await log.close();
      const read: RelayLogEntry[] = [];
      for await (const e of readRelayLog(dir)) read.push(e);
      // the event log adds its own sequence number and time to each line
      const written = read.map((e) => {
        const { seq: _seq, ts: _ts, ...rest } = e as RelayLogEntry & { seq?: number; ts?: string };
        return rest;
      });
      assert.deepEqual(written, [entry(1), entry(2)]);
    } finally {
      removeDir(dir);
    }
  });
});
