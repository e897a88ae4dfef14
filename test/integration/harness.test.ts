/**
 * The real-server harness works: Dovecot (both folder layouts, master user, TLS, APPEND limit),
 * Postfix delivering to Dovecot LMTP and refusing what it must, the corpora round-trip, and
 * stop() leaves no process behind.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FetchMessageObject, ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import {
  bulkCorpus,
  findMessage,
  isRunning,
  loadBulk,
  loadCorpus,
  makeMessage,
  openImap,
  probeRcpt,
  readGreeting,
  standardCorpus,
  startDovecot,
  startLab,
  writeLabConfig,
  type Corpus,
  type DovecotInstance,
  type Lab,
} from '../support/index.js';

/** A few POP3 commands on a raw socket; returns each reply's first line. */
async function pop3Dialog(port: number, commands: string[]): Promise<string[]> {
  const sock = connect({ port, host: '127.0.0.1' });
  sock.setEncoding('latin1');
  const lines: string[] = [];
  let buf = '';
  const next = (): Promise<string> =>
    new Promise((resolve, reject) => {
      const take = (): boolean => {
        const nl = buf.indexOf('\r\n');
        if (nl < 0) return false;
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        resolve(line);
        return true;
      };
      if (take()) return;
      const onData = (c: string): void => {
        buf += c;
        if (take()) sock.off('data', onData);
      };
      sock.on('data', onData);
      sock.once('error', reject);
    });
  try {
    lines.push(await next());
    for (const c of commands) {
      sock.write(`${c}\r\n`);
      lines.push(await next());
    }
  } finally {
    sock.destroy();
  }
  return lines;
}

async function folderCounts(client: ImapFlow): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const box of await client.list({ statusQuery: { messages: true } })) {
    if (box.flags.has('\\Noselect')) continue;
    out.set(box.path, box.status?.messages ?? -1);
  }
  return out;
}

function expectedCounts(inst: DovecotInstance, corpus: Corpus): Map<string, number> {
  return new Map(
    corpus.folders
      .filter((f) => f.selectable)
      .map((f) => [inst.mailboxName(f.path), f.messages.length]),
  );
}

async function fetchRaw(client: ImapFlow, mailbox: string, uid: number): Promise<Buffer> {
  const lock = await client.getMailboxLock(mailbox);
  try {
    const msg = await client.fetchOne(String(uid), { source: true }, { uid: true });
    assert.ok(msg && msg.source, `message ${uid} in ${mailbox}`);
    return msg.source;
  } finally {
    lock.release();
  }
}

describe('test harness: lab with Dovecot source, destination and Postfix', () => {
  let lab: Lab;
  let alice: { user: string; password: string };

  before(async () => {
    lab = await startLab();
    alice = lab.users[0]!;
  });
  after(async () => {
    await lab?.stop();
  });

  it('logs in to the source over IMAP and shows the dovecot layout with special-use folders', async () => {
    const client = await openImap(lab.source, alice);
    try {
      const boxes = await client.list();
      const sent = boxes.find((b) => b.path === 'Sent');
      assert.equal(sent?.delimiter, '/');
      assert.ok(sent?.flags.has('\\Sent') || sent?.specialUse === '\\Sent');
      for (const name of ['Drafts', 'Trash', 'Junk', 'Archive']) {
        assert.ok(
          boxes.some((b) => b.path === name),
          `${name} exists`,
        );
      }
      assert.equal(lab.source.separator, '/');
      assert.equal(lab.source.prefix, '');
      assert.ok(client.capabilities.has('CONDSTORE') && client.capabilities.has('QRESYNC'));
    } finally {
      await client.logout();
    }
  });

  it('refuses a wrong password on the source', async () => {
    await assert.rejects(
      openImap(lab.source, { user: alice.user, password: 'wrong' }),
      (err: { authenticationFailed?: boolean }) => {
        assert.equal(err.authenticationFailed, true);
        return true;
      },
    );
  });

  it('answers POP3 and logs a user in', async () => {
    assert.match(await readGreeting(lab.source.ports.pop3), /^\+OK /);
    const replies = await pop3Dialog(lab.source.ports.pop3, [
      `USER ${alice.user}`,
      `PASS ${alice.password}`,
      'QUIT',
    ]);
    assert.deepEqual(
      replies.map((l) => l.split(' ')[0]),
      ['+OK', '+OK', '+OK', '+OK'],
      replies.join(' | '),
    );
  });

  it('delivers mail sent to Postfix into the source mailbox via LMTP', async () => {
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: lab.mta.port,
      secure: false,
      ignoreTLS: true,
    });
    const subject = `harness delivery ${Date.now()}`;
    const info = await transport.sendMail({
      from: 'someone@example.net',
      to: alice.user,
      subject,
      text: 'hello\n',
    });
    assert.deepEqual(info.accepted, [alice.user]);
    const client = await openImap(lab.source, alice);
    try {
      const deadline = Date.now() + 15_000;
      let found = false;
      while (!found && Date.now() < deadline) {
        const lock = await client.getMailboxLock('INBOX');
        try {
          const uids = await client.search({ subject }, { uid: true });
          found = Array.isArray(uids) && uids.length === 1;
        } finally {
          lock.release();
        }
        if (!found) await sleep(200);
      }
      assert.ok(found, `message "${subject}" arrived in INBOX (see ${lab.mta.logFile})`);
    } finally {
      await client.logout();
    }
  });

  it('refuses an unknown local user at RCPT with 550 and a foreign domain as relay', async () => {
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: lab.mta.port,
      secure: false,
      ignoreTLS: true,
    });
    await assert.rejects(
      transport.sendMail({
        from: 'someone@example.net',
        to: 'nobody@example.org',
        subject: 'x',
        text: 'x',
      }),
      (err: { responseCode?: number; response?: string }) => {
        assert.equal(err.responseCode, 550);
        assert.match(err.response ?? '', /5\.1\.1/);
        return true;
      },
    );
    assert.match(await probeRcpt(lab.mta.port, 'someone@foreign.test'), /^554 5\.7\.1 /);
    await lab.mta.addUser('carol@example.org');
    assert.match(await probeRcpt(lab.mta.port, 'carol@example.org'), /^250 /);
  });

  it('adds a destination user and lets the master user log in as that user', async () => {
    const carol = { user: 'carol@example.org', password: 'carol-pw' };
    await lab.destination.addUser(carol.user, carol.password);
    const asCarol = await openImap(lab.destination, carol);
    await asCarol.logout();
    const asMaster = await openImap(lab.destination, {
      user: `${carol.user}*${lab.destinationMaster.user}`,
      password: lab.destinationMaster.password,
    });
    try {
      assert.ok((await asMaster.list()).some((b) => b.path === 'INBOX'));
    } finally {
      await asMaster.logout();
    }
    assert.match(
      readFileSync(lab.destination.passwdFile, 'utf8'),
      /^carol@example\.org:\{SHA512-CRYPT\}/m,
    );
  });

  it('round-trips the standard corpus on the source (counts, bytes, flags, dates)', async () => {
    const corpus = standardCorpus();
    const bob = lab.users[1]!;
    const loaded = await loadCorpus(lab.source, bob.user, bob.password, corpus);
    const client = await openImap(lab.source, bob);
    try {
      assert.deepEqual(await folderCounts(client), expectedCounts(lab.source, corpus));
      const boxes = await client.list();
      assert.ok(
        boxes.find((b) => b.path === 'Container')?.flags.has('\\Noselect'),
        'Container is \\Noselect',
      );
      assert.ok(boxes.some((b) => b.path === '\u65e5\u672c\u8a9e'));
      const inbox = loaded.folders.find((f) => f.path === 'INBOX')!;
      for (const key of ['eight-bit', 'attachment', 'long-header', 'twin-a', 'twin-b', 'size-1m']) {
        const m = findMessage(corpus, key);
        const uid =
          inbox.uids[
            corpus.folders[0]!.messages.indexOf(
              corpus.folders[0]!.messages.find((x) => x.key === key)!,
            )
          ]!;
        assert.ok((await fetchRaw(client, 'INBOX', uid)).equals(m.raw), `${key} is byte-identical`);
      }
      const lock = await client.getMailboxLock('INBOX');
      try {
        const all: FetchMessageObject[] = [];
        for await (const x of client.fetch('1:*', {
          flags: true,
          internalDate: true,
          envelope: true,
        }))
          all.push(x);
        const bySubject = (s: string): FetchMessageObject =>
          all.find((x) => x.envelope?.subject === s)!;
        // \Recent is session state (RFC 3501 2.3.2), not something a copy carries over.
        const flags = (s: string): string[] =>
          [...(bySubject(s).flags ?? [])].filter((f) => f !== '\\Recent').sort();
        assert.deepEqual(flags('keywords'), ['$Forwarded', '\\Seen', 'project-x']);
        assert.deepEqual(flags('deleted-not-expunged'), ['\\Deleted', '\\Seen']);
        assert.equal(
          new Date(bySubject('old-1999').internalDate!).toISOString(),
          '1999-12-31T23:59:59.000Z',
        );
      } finally {
        lock.release();
      }
    } finally {
      await client.logout();
    }
  });

  it('writes an AutoPort config for the lab', () => {
    const file = writeLabConfig(lab);
    const cfg = parse(readFileSync(file, 'utf8'));
    assert.equal(cfg.source.imap, lab.source.urls.imap);
    assert.equal(cfg.source.smtp, `smtp://127.0.0.1:${lab.mta.port}?tls=none`);
    assert.equal(cfg.destination.smtp, `lmtp://127.0.0.1:${lab.destination.ports.lmtp}`);
    assert.equal(cfg.destination.provision.path, lab.destination.passwdFile);
    assert.equal(
      readFileSync(cfg.destination.master.passwordFile, 'utf8'),
      lab.destinationMaster.password,
    );
    assert.deepEqual(cfg.domains, ['example.org']);
  });

  it('bulk-loads a Maildir quickly and Dovecot serves it', async () => {
    await lab.addSourceUser('bulk@example.org', 'bulk-pw');
    assert.match(await probeRcpt(lab.mta.port, 'bulk@example.org'), /^250 /);
    const corpus = bulkCorpus({
      count: 300,
      avgSize: 4000,
      seed: 42,
      folders: ['INBOX', 'Archive/2019'],
    });
    assert.deepEqual(
      bulkCorpus({ count: 300, avgSize: 4000, seed: 42, folders: ['INBOX', 'Archive/2019'] }),
      corpus,
    );
    const res = await loadBulk(lab.source, 'bulk@example.org', corpus);
    assert.equal(res.messages, 300);
    const client = await openImap(lab.source, { user: 'bulk@example.org', password: 'bulk-pw' });
    try {
      const counts = await folderCounts(client);
      assert.equal(counts.get('INBOX'), 150);
      assert.equal(counts.get('Archive/2019'), 150);
      const first = corpus.folders[1]!.messages[0]!;
      assert.ok(
        (await fetchRaw(client, 'Archive/2019', 1)).equals(first.raw),
        'UID 1 is the first message, byte for byte',
      );
    } finally {
      await client.logout();
    }
  });

  it('stop() ends every process of the lab', async () => {
    const pids = [...lab.source.pids(), ...lab.destination.pids(), ...lab.mta.pids()];
    assert.ok(pids.length >= 6, `found the processes (${pids.length})`);
    await lab.stop();
    await lab.stop();
    assert.deepEqual(pids.filter(isRunning), []);
  });
});

describe('test harness: courier-style Dovecot with TLS and an APPEND limit', () => {
  let inst: DovecotInstance;
  const user = { user: 'dave@example.org', password: 'dave-pw' };

  before(async () => {
    inst = await startDovecot({
      name: 'courier',
      users: [user],
      layout: 'courier',
      tls: true,
      appendLimit: 2 * 1024 * 1024,
    });
  });
  after(async () => {
    await inst?.stop();
  });

  it('shows "." and the INBOX. prefix, over verified IMAPS', async () => {
    const client = await openImap(inst, user, { tls: 'implicit' });
    try {
      assert.equal(client.namespace?.prefix, 'INBOX.');
      assert.equal(client.namespace?.delimiter, '.');
      const sent = (await client.list()).find((b) => b.path === 'INBOX.Sent');
      assert.equal(sent?.delimiter, '.');
    } finally {
      await client.logout();
    }
  });

  it('loads the standard corpus under INBOX. and refuses a too-big APPEND', async () => {
    const corpus = standardCorpus();
    await loadCorpus(inst, user.user, user.password, corpus);
    const client = await openImap(inst, user, { tls: 'starttls' });
    try {
      assert.deepEqual(await folderCounts(client), expectedCounts(inst, corpus));
      const boxes = await client.list();
      assert.ok(boxes.find((b) => b.path === 'INBOX.Container')?.flags.has('\\Noselect'));
      assert.ok(boxes.some((b) => b.path === 'INBOX.a.b.c'));
      const big = makeMessage({ subject: 'too big', size: 3 * 1024 * 1024 });
      await assert.rejects(
        client.append('INBOX', big),
        (err: { serverResponseCode?: string; response?: string; message: string }) => {
          assert.match(
            `${err.serverResponseCode ?? ''} ${err.response ?? ''} ${err.message}`,
            /LIMIT|larger/i,
          );
          return true;
        },
      );
    } finally {
      await client.logout();
    }
  });

  it('makes messages of exactly the requested size', () => {
    for (const size of [1024, 1025, 4096, 100_000])
      assert.equal(makeMessage({ subject: 's', size }).length, size);
  });
});
