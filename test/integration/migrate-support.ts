/**
 * Shared pieces of the migrate integration tests: a Config for two harness Dovecots, a
 * store + ledger in a temp dir, and an independent check that reads both servers over
 * IMAP with imapflow (not the copy engine's own client) and compares what they hold.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { parseEndpoint } from '../../src/core/config/endpoint.js';
import type { Config } from '../../src/core/config/types.js';
import { openJsonStore } from '../../src/core/state/json-store.js';
import type { StateStore } from '../../src/core/state/types.js';
import { openLedger, type Ledger } from '../../src/core/transfer/copy/ledger.js';
import { parseInternalDate } from '../../src/core/transfer/copy/verify.js';
import { type DovecotInstance, openImap, type Corpus } from '../support/index.js';

export function labConfigFor(
  src: DovecotInstance,
  dst: DovecotInstance,
  dir: string,
  connections = 2,
): Config {
  if (!dst.master) throw new Error('the destination needs a master user');
  return {
    file: join(dir, 'autoport.yaml'),
    source: {
      imap: parseEndpoint(src.urls.imap),
      pop3: parseEndpoint(src.urls.pop3),
      useImap: true,
    },
    destination: {
      imap: parseEndpoint(dst.urls.imap),
      provision: { kind: 'passwd-file', path: dst.passwdFile, scheme: 'SHA512-CRYPT' },
      master: { user: dst.master.user, password: dst.master.password, separator: '*' },
    },
    listen: {},
    domains: ['example.org'],
    strategy: 'proxy',
    state: join(dir, 'state.json'),
    stateDir: dir,
    keyFile: join(dir, 'autoport.key'),
    logDir: join(dir, 'log'),
    transfer: { connections, concurrency: 2 },
    timeouts: { connectMs: 5000, greetingMs: 5000, commandMs: 30_000, idleMs: 60_000 },
  };
}

export async function openStateAndLedger(
  dir: string,
): Promise<{ store: StateStore; ledger: Ledger; ledgerPath: string; close(): Promise<void> }> {
  const store = await openJsonStore(join(dir, 'state.json'));
  const ledgerPath = join(dir, 'ledger.jsonl');
  const ledger = await openLedger(ledgerPath);
  return {
    store,
    ledger,
    ledgerPath,
    close: async () => {
      await ledger.close();
      await store.close();
    },
  };
}

export interface SeenMessage {
  sha256: string;
  flags: string;
  date: number;
  size: number;
}

/** Every message of a mailbox as (hash, flags without \Recent, INTERNALDATE instant, size). */
export async function readMailbox(
  inst: DovecotInstance,
  creds: { user: string; password: string },
  mailbox: string,
): Promise<SeenMessage[]> {
  const client = await openImap(inst, creds);
  const out: SeenMessage[] = [];
  try {
    const box = await client.mailboxOpen(mailbox, { readOnly: true });
    if (box.exists > 0) {
      for await (const m of client.fetch(
        '1:*',
        { uid: true, flags: true, internalDate: true, source: true },
        { uid: false },
      )) {
        const src = m.source as Buffer;
        const flags = [...(m.flags ?? new Set<string>())]
          .filter((f) => f !== '\\Recent')
          .map((f) => f.toLowerCase())
          .sort()
          .join(' ');
        const d = m.internalDate;
        out.push({
          sha256: createHash('sha256').update(src).digest('hex'),
          flags,
          date: d instanceof Date ? d.getTime() : parseInternalDate(String(d)),
          size: src.length,
        });
      }
    }
  } finally {
    await client.logout().catch(() => client.close());
  }
  return out.sort((a, b) => (a.sha256 + a.date < b.sha256 + b.date ? -1 : 1));
}

export async function listMailboxes(
  inst: DovecotInstance,
  creds: { user: string; password: string },
): Promise<Map<string, string[]>> {
  const client = await openImap(inst, creds);
  try {
    const list = await client.list();
    return new Map(list.map((m) => [m.path, [...m.flags]]));
  } finally {
    await client.logout().catch(() => client.close());
  }
}

/**
 * Assert that every selectable corpus folder holds the same messages on both servers
 * (names mapped through each instance's separator and prefix), and no duplicates.
 */
export async function assertSameMail(
  corpus: Corpus,
  src: DovecotInstance,
  dst: DovecotInstance,
  creds: { user: string; password: string },
  opts: { expectCorpusCounts?: boolean } = {},
): Promise<void> {
  const dstBoxes = await listMailboxes(dst, creds);
  for (const f of corpus.folders) {
    const sName = src.mailboxName(f.path);
    const dName = dst.mailboxName(f.path);
    assert.ok(dstBoxes.has(dName), `destination lacks folder ${dName}`);
    if (!f.selectable) continue;
    const [a, b] = await Promise.all([
      readMailbox(src, creds, sName),
      readMailbox(dst, creds, dName),
    ]);
    if (opts.expectCorpusCounts !== false)
      assert.equal(a.length, f.messages.length, `source ${sName} count`);
    assert.deepEqual(b, a, `folder ${f.path}: destination differs from source`);
  }
}
