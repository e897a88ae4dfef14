/**
 * Test corpora: folders with messages, flags and received dates, and loading them into a
 * test Dovecot over IMAP (APPEND with flags and INTERNALDATE, as a real client would).
 * Folder paths in a corpus always use '/' and no prefix; loadCorpus translates them to the
 * instance's separator and namespace prefix.
 */
import type { DovecotInstance } from './dovecot.js';
import { openImap } from './imap-client.js';
import { makeMessage, prng, type MessageSpec } from './message.js';

export { makeMessage, rfc5322Date, type MessageSpec, type Attachment } from './message.js';

export interface CorpusMessage {
  /** stable name for tests ("twin-a", "size-1m", ...) */
  key: string;
  raw: Buffer;
  /** system flags and keywords, as APPENDed */
  flags: string[];
  /** the INTERNALDATE to APPEND with (whole seconds) */
  internalDate: Date;
}

export interface CorpusFolder {
  /** '/'-separated, no prefix; "INBOX" is the inbox */
  path: string;
  /** false for a \Noselect container that exists only because a child does */
  selectable: boolean;
  subscribe: boolean;
  /** RFC 6154 attribute the destination should give this folder's counterpart */
  specialUse?: string;
  /** a folder named for a special use in another language, without the attribute */
  localizedSpecialUse?: string;
  messages: CorpusMessage[];
}

export interface Corpus {
  folders: CorpusFolder[];
}

export interface StandardCorpusOptions {
  /** add a 50 MB message in folder "Big" (slow to load; off by default) */
  huge?: boolean;
  /** recipient address written into To: (default alice@example.org) */
  to?: string;
}

const utc = (y: number, mo: number, d: number, h = 12, mi = 0, s = 0): Date =>
  new Date(Date.UTC(y, mo - 1, d, h, mi, s));

function msg(
  key: string,
  spec: MessageSpec,
  flags: string[] = [],
  internalDate?: Date,
): CorpusMessage {
  const date = spec.date ?? utc(2024, 3, 1);
  return { key, raw: makeMessage({ ...spec, date }), flags, internalDate: internalDate ?? date };
}

function folder(
  path: string,
  messages: CorpusMessage[],
  extra: Partial<CorpusFolder> = {},
): CorpusFolder {
  return { path, selectable: true, subscribe: true, messages, ...extra };
}

/** Deterministic bytes (0..255, every value), for binary attachments. */
export function binaryBytes(n: number, seed: number): Buffer {
  const rnd = prng(seed);
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rnd() * 256);
  return b;
}

/**
 * The corpus that exercises what a migration must preserve: nesting, an empty folder, a
 * \Noselect container, non-ASCII names, special-use and localized folders, every system flag
 * and keywords, dates from 1999 to 2024, sizes from 1 KB to 1 MB (50 MB with `huge`),
 * 8-bit and binary content, a 2000-byte header line, a message without Message-ID and two
 * distinct messages with identical headers.
 */
export function standardCorpus(opts: StandardCorpusOptions = {}): Corpus {
  const to = opts.to ?? 'Alice <alice@example.org>';
  const from = 'Bob Sender <bob@example.net>';
  const m = (key: string, spec: MessageSpec, flags: string[] = [], idate?: Date): CorpusMessage =>
    msg(key, { from, to, subject: key, ...spec }, flags, idate);
  const twinHeaders: MessageSpec = {
    subject: 'Weekly report',
    date: utc(2024, 2, 2, 8, 0, 0),
    messageId: '<same-id@corpus.autoport.test>',
  };
  const inbox = [
    m('plain-1k', { size: 1024 }),
    m('seen', { date: utc(2024, 1, 2) }, ['\\Seen']),
    m('answered', { date: utc(2010, 6, 15) }, ['\\Seen', '\\Answered']),
    m('flagged', { date: utc(2010, 7, 1) }, ['\\Flagged']),
    m('deleted-not-expunged', {}, ['\\Seen', '\\Deleted']),
    m('draft-flag', {}, ['\\Draft']),
    m('keywords', {}, ['\\Seen', '$Forwarded', 'project-x']),
    m('old-1999', { date: utc(1999, 12, 31, 23, 59, 59) }, ['\\Seen']),
    m('size-10k', { size: 10 * 1024 }),
    m('size-100k', { size: 100 * 1024 }),
    m('size-1m', { size: 1024 * 1024 }, ['\\Seen']),
    // German, Japanese, French and Spanish text, sent as 8bit UTF-8.
    m('eight-bit', {
      subject: 'Gr\u00fc\u00dfe aus K\u00f6ln',
      body: 'Gr\u00fc\u00dfe aus K\u00f6ln, sch\u00f6ne Gr\u00f6\u00dfe.\n\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3067\u3059\u3002\n\u00c7a va? \u00d1and\u00fa.\n',
    }),
    m('attachment', {
      body: 'See the attached file.\n',
      attachment: {
        filename: 'data.bin',
        contentType: 'application/octet-stream',
        data: binaryBytes(20_000, 7),
      },
    }),
    m('long-header', {
      headers: [
        ['X-Long-Header', 'x'.repeat(2000)],
        [
          'References',
          Array.from({ length: 40 }, (_, i) => `<ref${i}@corpus.autoport.test>`).join('\r\n '),
        ],
      ],
    }),
    m('no-message-id', { messageId: null }),
    msg('twin-a', {
      ...twinHeaders,
      from,
      to,
      body: 'First of two messages with the same headers.\n',
    }),
    msg('twin-b', { ...twinHeaders, from, to, body: 'Second one: same headers, other body.\n' }),
  ];
  const folders: CorpusFolder[] = [
    folder('INBOX', inbox),
    folder(
      'Sent',
      [
        m('sent-1', { from: to, to: from }, ['\\Seen']),
        m('sent-2', { from: to, to: from, date: utc(2010, 1, 1) }, ['\\Seen', '$Forwarded']),
      ],
      { specialUse: '\\Sent' },
    ),
    folder('Drafts', [m('draft-1', { from: to, messageId: null }, ['\\Draft', '\\Seen'])], {
      specialUse: '\\Drafts',
    }),
    folder('Trash', [m('trash-1', {}, ['\\Seen', '\\Deleted'])], { specialUse: '\\Trash' }),
    folder('Junk', [m('junk-1', { from: 'Spammer <win@spam.test>' }, ['$Junk'])], {
      specialUse: '\\Junk',
    }),
    folder('Archive', [m('archive-2010', { date: utc(2010, 3, 3) }, ['\\Seen'])], {
      specialUse: '\\Archive',
    }),
    folder('Gesendete Elemente', [m('gesendet-1', { from: to, to: from }, ['\\Seen'])], {
      localizedSpecialUse: '\\Sent',
    }),
    folder('a', [m('nested-a', {})]),
    folder('a/b', [m('nested-b', {})]),
    folder('a/b/c', [m('nested-c1', {}), m('nested-c2', { date: utc(1999, 5, 5) }, ['\\Flagged'])]),
    folder('Empty', []),
    folder('Container', [], { selectable: false, subscribe: false }),
    folder('Container/Child', [m('child-1', {})]),
    // "Entwuerfe alt" with u-umlaut, and "Nihongo" in kanji: names that need modified UTF-7.
    folder('Entw\u00fcrfe alt', [m('umlaut-folder', {})]),
    folder('\u65e5\u672c\u8a9e', [m('cjk-folder', {})]),
  ];
  if (opts.huge) folders.push(folder('Big', [m('size-50m', { size: 50 * 1024 * 1024 })]));
  return { folders };
}

/** Every message of a corpus, with its folder. */
export function corpusMessages(c: Corpus): Array<CorpusMessage & { folder: string }> {
  return c.folders.flatMap((f) => f.messages.map((x) => ({ ...x, folder: f.path })));
}

export function findMessage(c: Corpus, key: string): CorpusMessage & { folder: string } {
  const found = corpusMessages(c).find((x) => x.key === key);
  if (!found) throw new Error(`no message "${key}" in corpus`);
  return found;
}

export interface LoadedFolder {
  path: string;
  /** the name on the server (prefix and separator applied) */
  mailbox: string;
  uidValidity?: bigint;
  /** APPENDUID per message, in corpus order */
  uids: number[];
}

export interface LoadResult {
  folders: LoadedFolder[];
  messages: number;
  bytes: number;
}

/**
 * Create the corpus's folders for `user` and APPEND every message with its flags and
 * INTERNALDATE over IMAP. Folders that exist already (the special-use ones Dovecot creates)
 * are reused. Containers are not created: their child brings them into being.
 */
export async function loadCorpus(
  inst: DovecotInstance,
  user: string,
  password: string,
  corpus: Corpus,
): Promise<LoadResult> {
  const client = await openImap(inst, { user, password });
  const result: LoadResult = { folders: [], messages: 0, bytes: 0 };
  try {
    for (const f of corpus.folders) {
      const mailbox = inst.mailboxName(f.path);
      if (!f.selectable) continue;
      if (f.path !== 'INBOX') await client.mailboxCreate(mailbox);
      if (f.subscribe && f.path !== 'INBOX') await client.mailboxSubscribe(mailbox);
      const loaded: LoadedFolder = { path: f.path, mailbox, uids: [] };
      for (const x of f.messages) {
        const r = await client.append(mailbox, x.raw, x.flags, x.internalDate);
        if (!r) throw new Error(`APPEND of "${x.key}" to ${mailbox} failed`);
        if (r.uid !== undefined) loaded.uids.push(r.uid);
        if (r.uidValidity !== undefined) loaded.uidValidity = r.uidValidity;
        result.messages++;
        result.bytes += x.raw.length;
      }
      result.folders.push(loaded);
    }
  } finally {
    await client.logout().catch(() => client.close());
  }
  return result;
}
