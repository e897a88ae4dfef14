/**
 * Big deterministic corpora for benchmarks, and a fast loader for them.
 *
 * APPENDing 5,000 messages over IMAP takes a while; writing the Maildir files directly
 * (as a delivery agent would: a unique name with S= size and :2,FLAGS, mtime = received
 * date) and then `doveadm force-resync` to build the indexes is several times faster.
 * Only system flags are written this way (keywords would need dovecot-keywords). Use
 * loadCorpus (IMAP) for anything else.
 */
import { randomBytes } from 'node:crypto';
import { chownSync, mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import type { Corpus, CorpusFolder, CorpusMessage } from './corpus.js';
import type { DovecotInstance } from './dovecot.js';
import { makeMessage, prng } from './message.js';

export interface BulkCorpusOptions {
  count: number;
  /** mean size in bytes; sizes follow an exponential spread, at least 600 bytes */
  avgSize: number;
  seed: number;
  /** folders to spread the messages over, round robin (default ["INBOX"]) */
  folders?: string[];
}

const SYSTEM_FLAGS: Array<[flag: string, letter: string]> = [
  ['\\Draft', 'D'],
  ['\\Flagged', 'F'],
  ['\\Answered', 'R'],
  ['\\Seen', 'S'],
  ['\\Deleted', 'T'],
];

/** `count` messages with pseudo-random sizes, dates (2005-2024), flags and text, same for the same seed. */
export function bulkCorpus(opts: BulkCorpusOptions): Corpus {
  const rnd = prng(opts.seed);
  const names = opts.folders ?? ['INBOX'];
  const folders: CorpusFolder[] = names.map((path) => ({
    path,
    selectable: true,
    subscribe: true,
    messages: [],
  }));
  const start = Date.UTC(2005, 0, 1);
  const span = Date.UTC(2024, 11, 31) - start;
  for (let i = 0; i < opts.count; i++) {
    const size = Math.max(
      600,
      Math.min(opts.avgSize * 20, Math.round(-Math.log(1 - rnd()) * opts.avgSize)),
    );
    const date = new Date(start + Math.floor((rnd() * span) / 1000) * 1000);
    const flags: string[] = [];
    if (rnd() < 0.7) flags.push('\\Seen');
    if (rnd() < 0.1) flags.push('\\Answered');
    if (rnd() < 0.05) flags.push('\\Flagged');
    const key = `bulk-${i}`;
    const raw = makeMessage({
      from: `Sender ${i % 97} <sender${i % 97}@example.net>`,
      to: 'Recipient <recipient@example.org>',
      subject: `Bulk message ${i}`,
      date,
      body: `Message ${i} of ${opts.count}.\n`,
      size,
      seed: opts.seed + i,
    });
    const msg: CorpusMessage = { key, raw, flags, internalDate: date };
    folders[i % folders.length]!.messages.push(msg);
  }
  return { folders };
}

export interface BulkLoadResult {
  folders: Array<{ path: string; mailbox: string; count: number }>;
  messages: number;
  bytes: number;
}

function maildirFlags(flags: string[]): string {
  return SYSTEM_FLAGS.filter(([f]) => flags.includes(f))
    .map(([, l]) => l)
    .join('');
}

/** mkdir -p below `root`, each new dir owned by the mail user. */
function mkdirOwned(root: string, dir: string, uid: number, gid: number): void {
  let cur = root;
  for (const part of relative(root, dir).split(sep).filter(Boolean)) {
    cur = join(cur, part);
    try {
      mkdirSync(cur, { mode: 0o700 });
      chownSync(cur, uid, gid);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}

/**
 * Write a corpus straight into `user`'s Maildir and let Dovecot index it. The user must
 * exist in the instance's passwd-file. Keywords in the corpus are dropped (system flags only).
 */
export async function loadBulk(
  inst: DovecotInstance,
  user: string,
  corpus: Corpus,
): Promise<BulkLoadResult> {
  const { uid, gid } = inst.mailUser;
  const home = inst.homeOf(user);
  mkdirOwned(inst.dir, home, uid, gid);
  const result: BulkLoadResult = { folders: [], messages: 0, bytes: 0 };
  const now = Math.floor(Date.now() / 1000);
  let n = 0;
  for (const f of corpus.folders) {
    const mailbox = inst.mailboxName(f.path);
    if (f.path !== 'INBOX') {
      await inst.doveadm(['mailbox', 'create', '-u', user, mailbox]).catch((err: Error) => {
        if (!/exists/i.test(err.message)) throw err;
      });
    }
    const dir = (await inst.doveadm(['mailbox', 'path', '-u', user, mailbox])).trim();
    for (const sub of ['cur', 'new', 'tmp']) mkdirOwned(inst.dir, join(dir, sub), uid, gid);
    for (const m of f.messages) {
      // Dovecot gives UIDs in file-name order (seconds, then the M number): keep corpus order.
      const name = `${now}.M${n++}P${process.pid}.autoport,S=${m.raw.length},W=${m.raw.length}:2,${maildirFlags(m.flags)}`;
      const file = join(dir, 'cur', name);
      writeFileSync(file, m.raw, { mode: 0o600 });
      chownSync(file, uid, gid);
      // Maildir keeps the received date (INTERNALDATE) as the file's mtime.
      utimesSync(file, m.internalDate, m.internalDate);
      result.bytes += m.raw.length;
    }
    result.messages += f.messages.length;
    result.folders.push({ path: f.path, mailbox, count: f.messages.length });
  }
  await inst.doveadm(['force-resync', '-u', user, '*']);
  return result;
}

export interface LargeCorpusOptions {
  count: number;
  /** message sizes spread evenly between these, in bytes (the same spread for the same count) */
  minSize: number;
  maxSize: number;
}

/**
 * `count` large messages (an attachment of random bytes, base64), generated at the speed
 * of the random source rather than word by word: a gigabyte in seconds. The content is
 * not reproducible (the sizes are): compare what the servers hold, not the corpus.
 */
export function largeCorpus(opts: LargeCorpusOptions): Corpus {
  const messages: CorpusMessage[] = [];
  const start = Date.UTC(2020, 0, 1);
  for (let i = 0; i < opts.count; i++) {
    const size =
      opts.minSize + Math.floor((((i * 7919) % 1000) / 1000) * (opts.maxSize - opts.minSize));
    const date = new Date(start + i * 3_600_000);
    const head = [
      `Message-ID: <large-${i}-${randomBytes(6).toString('hex')}@corpus.autoport.test>`,
      `Date: ${date.toUTCString().replace('GMT', '+0000')}`,
      'From: Sender <sender@example.net>',
      'To: Recipient <recipient@example.org>',
      `Subject: Large message ${i}`,
      'MIME-Version: 1.0',
      'Content-Type: application/octet-stream',
      'Content-Transfer-Encoding: base64',
      '',
      '',
    ].join('\r\n');
    const b64 = randomBytes(Math.floor((size * 3) / 4)).toString('base64');
    const lines: string[] = [];
    for (let o = 0; o < b64.length; o += 76) lines.push(b64.slice(o, o + 76));
    const raw = Buffer.from(`${head}${lines.join('\r\n')}\r\n`, 'latin1');
    messages.push({ key: `large-${i}`, raw, flags: i % 3 ? ['\\Seen'] : [], internalDate: date });
  }
  return { folders: [{ path: 'INBOX', selectable: true, subscribe: true, messages }] };
}
