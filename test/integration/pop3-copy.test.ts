/**
 * POP3 fallback against real Dovecots: source over POP3, destination over IMAP.
 * Five messages (dot-leading lines, 8-bit and binary content, several date cases) must
 * arrive byte for byte with the expected INTERNALDATEs, the source must keep all of
 * them, UIDLs must be recorded, and re-runs must copy nothing twice.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { ImapFlow } from 'imapflow';
import { binaryBytes, openImap, startDovecot, type DovecotInstance } from '../support/index.js';
import {
  pop3Copy,
  Pop3Client,
  type Pop3ConnectOptions,
} from '../../src/core/transfer/pop3/index.js';

const USER = { user: 'pop@example.org', password: 'pop-pass' };
let source: DovecotInstance;
let dest: DovecotInstance;
let limited: DovecotInstance;
const clients: ImapFlow[] = [];

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const crlf = (lines: string[]): Buffer => Buffer.from(lines.join('\r\n') + '\r\n', 'latin1');

const BIN = binaryBytes(1500, 7);
// Raw 8-bit bytes (no NUL, CR or LF) that are not valid UTF-8: a UTF-8 decoder would mangle them.
const EIGHT_BIT = Buffer.from(Array.from({ length: 120 }, (_, i) => 0x80 + i));

interface Case {
  bytes: Buffer;
  /** expected INTERNALDATE; undefined = time of the copy */
  date?: Date;
}

const CASES: Case[] = [
  {
    // top-most Received wins over an older hop and over Date:
    bytes: crlf([
      'Received: from mx.example.org by store.example.org with LMTP id abc;',
      '\tTue, 02 Jan 2018 10:00:00 +0100',
      'Received: from client by mx.example.org with ESMTPSA; Tue, 02 Jan 2018 08:59:00 +0000',
      'Date: Mon, 01 Jan 2018 00:00:00 +0000',
      'Subject: dots',
      '',
      '.hidden line starts with a dot',
      '.',
      '..',
      'end',
    ]),
    date: new Date('2018-01-02T09:00:00Z'),
  },
  {
    // top-most Received has no date: the next hop's date is used
    bytes: crlf([
      'Received: from somewhere by store.example.org',
      'Received: from a by b; 5 Mar 2021 12:30:45 -0500 (EST)',
      'Date: Fri, 05 Mar 2021 11:00:00 -0500',
      'Subject: second hop',
      '',
      'body',
    ]),
    date: new Date('2021-03-05T17:30:45Z'),
  },
  {
    bytes: crlf(['Date: Fri, 31 Dec 1999 23:59:59 -0800', 'Subject: only a Date', '', 'old mail']),
    date: new Date('2000-01-01T07:59:59Z'),
  },
  {
    bytes: Buffer.concat([
      crlf([
        'Received: from x by y; Sun, 16 Jun 2024 08:15:00 PDT',
        'Subject: binary and 8-bit',
        'MIME-Version: 1.0',
        'Content-Type: multipart/mixed; boundary="b1"',
        '',
        '--b1',
        'Content-Type: text/plain; charset=iso-8859-1',
        'Content-Transfer-Encoding: 8bit',
        '',
      ]),
      EIGHT_BIT,
      crlf([
        '',
        '--b1',
        'Content-Type: application/octet-stream',
        'Content-Transfer-Encoding: base64',
        '',
        ...(BIN.toString('base64').match(/.{1,76}/g) ?? []),
        '--b1--',
      ]),
    ]),
    date: new Date('2024-06-16T15:15:00Z'),
  },
  { bytes: crlf(['Subject: no dates at all', '', 'when?']) },
];

const popOptions = (inst: DovecotInstance): Pop3ConnectOptions => ({
  host: inst.host,
  port: inst.ports.pop3,
  tls: 'none',
  user: USER.user,
  password: USER.password,
  timeoutMs: 10_000,
});

before(async () => {
  [source, dest, limited] = await Promise.all([
    startDovecot({ name: 'pop-src', users: [USER], tls: true }),
    startDovecot({ name: 'pop-dst', users: [USER] }),
    startDovecot({ name: 'pop-lim', users: [USER], appendLimit: 1024 }),
  ]);
  const src = await openImap(source, USER);
  try {
    for (const c of CASES) await src.append('INBOX', c.bytes, [], new Date('2001-01-01T00:00:00Z'));
  } finally {
    await src.logout();
  }
});
after(async () => {
  await Promise.all(clients.map((c) => c.logout().catch(() => undefined)));
  await Promise.all([source?.stop(), dest?.stop(), limited?.stop()]);
});

async function destMessages(
  c: ImapFlow,
): Promise<Array<{ uid: number; hash: string; date: Date }>> {
  const lock = await c.getMailboxLock('INBOX', { readOnly: true });
  try {
    const out: Array<{ uid: number; hash: string; date: Date }> = [];
    if (c.mailbox && c.mailbox.exists > 0) {
      for await (const m of c.fetch('1:*', { uid: true, source: true, internalDate: true })) {
        out.push({ uid: m.uid, hash: sha(m.source!), date: new Date(m.internalDate!) });
      }
    }
    return out;
  } finally {
    lock.release();
  }
}

test('copies the inbox byte for byte with dates and UIDLs; re-runs copy nothing', async () => {
  const dst = await openImap(dest, USER);
  clients.push(dst);
  const recorded = new Map<string, { uid: number | undefined; hash: string; size: number }>();
  const started = Date.now();
  const res = await pop3Copy({
    source: popOptions(source),
    destination: dst,
    onCopied: (uidl, uid, hash, size) => void recorded.set(uidl, { uid, hash, size }),
  });
  const finished = Date.now();
  assert.equal(res.total, 5);
  assert.equal(res.copied.size, 5);
  assert.deepEqual(res.failed, []);

  const got = await destMessages(dst);
  assert.equal(got.length, 5);
  for (const [i, c] of CASES.entries()) {
    const m = got.find((g) => g.hash === sha(c.bytes));
    assert.ok(m, `message ${i + 1} did not arrive byte for byte`);
    if (c.date)
      assert.equal(m.date.toISOString(), c.date.toISOString(), `INTERNALDATE of message ${i + 1}`);
    else
      assert.ok(
        m.date.getTime() >= Math.floor(started / 1000) * 1000 && m.date.getTime() <= finished,
        'copy time',
      );
  }
  assert.deepEqual([...res.dates.values()].sort(), [
    'date',
    'now',
    'received',
    'received',
    'received',
  ]);

  // the source keeps every message and the UIDLs recorded are the source's
  const pop = await Pop3Client.connect(popOptions(source));
  const stat = await pop.stat();
  const uidls = [...(await pop.uidl()).values()];
  await pop.quit();
  assert.equal(stat.count, 5);
  assert.deepEqual([...recorded.keys()].sort(), [...uidls].sort());
  assert.deepEqual(
    new Set([...recorded.values()].map((r) => r.uid)),
    new Set(got.map((g) => g.uid)),
  );
  for (const r of recorded.values())
    assert.ok(got.some((g) => g.uid === r.uid && g.hash === r.hash));

  // second run: everything is in `copied`
  const second = await pop3Copy({
    source: popOptions(source),
    destination: dst,
    copied: new Set(recorded.keys()),
    recordedDestUids: new Set(got.map((g) => g.uid)),
    onCopied: () => assert.fail('nothing should be copied again'),
  });
  assert.deepEqual([second.copied.size, second.matched.size, second.skipped], [0, 0, 5]);

  // a run that crashed after APPEND but before recording the last two: they are matched, not appended
  const firstThree = uidls.slice(0, 3);
  const matched: string[] = [];
  const third = await pop3Copy({
    source: popOptions(source),
    destination: dst,
    copied: new Set(firstThree),
    recordedDestUids: new Set(firstThree.map((u) => recorded.get(u)!.uid!)),
    onCopied: (uidl, uid) => {
      matched.push(uidl);
      assert.equal(uid, recorded.get(uidl)?.uid);
    },
  });
  assert.equal(third.copied.size, 0);
  assert.equal(third.matched.size, 2);
  assert.deepEqual(matched.sort(), uidls.slice(3).sort());
  assert.equal((await destMessages(dst)).length, 5, 'no duplicates');
});

test('a message the destination refuses is recorded as failed and the rest goes on', async () => {
  const dst = await openImap(limited, USER);
  clients.push(dst);
  const failed: string[] = [];
  const res = await pop3Copy({
    // this time over STLS (RFC 2595) with the certificate verified
    source: { ...popOptions(source), tls: 'starttls', ca: source.tls!.ca },
    destination: dst,
    onCopied: () => undefined,
    onFailed: (uidl) => void failed.push(uidl),
  });
  const big = CASES.filter((c) => c.bytes.length > 1024).length;
  assert.ok(big >= 1);
  assert.equal(res.failed.length, big);
  assert.equal(res.copied.size, 5 - big);
  assert.deepEqual(
    failed,
    res.failed.map((f) => f.uidl),
  );
  for (const f of res.failed) assert.match(f.reason, /larger than the maximum size/);
  assert.equal((await destMessages(dst)).length, 5 - big);
});

test('implicit TLS (pop3s) with a verified certificate, and a wrong CA refused', async () => {
  const pop = await Pop3Client.connect({
    ...popOptions(source),
    port: source.ports.pop3s!,
    tls: 'implicit',
    ca: source.tls!.ca,
  });
  assert.equal((await pop.stat()).count, 5);
  await pop.quit();
  await assert.rejects(
    Pop3Client.connect({ ...popOptions(source), port: source.ports.pop3s!, tls: 'implicit' }),
    /self[- ]signed|unable to (get|verify)|certificate/i,
  );
});
