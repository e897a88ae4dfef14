/**
 * The phases of copyFolder that talk to servers, one by one, against a real Dovecot (the
 * source and the destination are two accounts on it): the copy itself (append, match by
 * hash, skip over the APPENDLIMIT, skip what vanished), the flags of matched copies, flag
 * changes, expunges, the watermark, and settling what landed above it.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseEndpoint } from '../../src/core/config/endpoint.js';
import { Checkpoint, UNKNOWN_FLAGS } from '../../src/core/transfer/copy/checkpoint.js';
import { openSession, type SideAccess } from '../../src/core/transfer/copy/connect.js';
import { copyNewMessages } from '../../src/core/transfer/copy/copy-new.js';
import {
  applyFlagChanges,
  openFolders,
  prepareCheckpoint,
  removeExpunged,
  setMatchedFlags,
  settleDestination,
  type OpenFolders,
} from '../../src/core/transfer/copy/folder-phases.js';
import { newFolderStats } from '../../src/core/transfer/copy/folder-result.js';
import type { ImapSession } from '../../src/core/transfer/copy/imap-session.js';
import { countingLedger } from '../../src/core/transfer/copy/ledger.js';
import { FolderOutcomes } from '../../src/core/transfer/copy/outcomes.js';
import { DEFAULT_TUNING } from '../../src/core/transfer/copy/tuning.js';
import {
  makeMessage,
  makeTempDir,
  openImap,
  removeDir,
  startDovecot,
  type DovecotInstance,
} from '../support/index.js';

const source = { user: 'src@example.org', password: 'src-secret' };
const destination = { user: 'dst@example.org', password: 'dst-secret' };
const target = { source: 'INBOX', destination: 'INBOX' };
const timeouts = { connectMs: 5000, greetingMs: 5000, commandMs: 30_000 };
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

const mail = (n: number, body: string): Buffer =>
  makeMessage({ from: 'x@example.org', to: 'y@example.org', subject: `m${n}`, body });

describe('copyFolder phases against Dovecot', () => {
  let dovecot: DovecotInstance;
  let dir: string;
  let src: ImapSession;
  let dst: ImapSession;
  let cp: Checkpoint;
  let boxes: OpenFolders;
  const ledger = countingLedger().forAccount(source.user);
  const stats = newFolderStats();
  let outcomes: FolderOutcomes;
  /** source messages by name, and their source UIDs */
  const m = {
    a: mail(1, 'small and seen'),
    big: mail(2, 'x'.repeat(20_000)),
    c: mail(3, 'flagged'),
    d: mail(4, 'already on the destination from a killed run'),
  };
  const uid: Record<keyof typeof m, number> = { a: 0, big: 0, c: 0, d: 0 };
  /** destination UID of the copy of `d` an earlier run left there */
  let dOrphan = 0;

  const side = (label: 'source' | 'destination', creds: typeof source): SideAccess => ({
    label,
    endpoint: parseEndpoint(dovecot.urls.imap),
    credentials: creds,
  });

  /** The destination INBOX as (UID -> hash, flags), read with imapflow. */
  async function destinationBox(): Promise<Map<number, { sha256: string; flags: string[] }>> {
    const client = await openImap(dovecot, destination);
    const out = new Map<number, { sha256: string; flags: string[] }>();
    try {
      const box = await client.mailboxOpen('INBOX', { readOnly: true });
      if (box.exists === 0) return out;
      for await (const x of client.fetch('1:*', { uid: true, flags: true, source: true })) {
        const flags = [...(x.flags ?? [])].filter((f) => f !== '\\Recent').sort();
        out.set(x.uid, { sha256: sha(x.source as Buffer), flags });
      }
    } finally {
      await client.logout().catch(() => client.close());
    }
    return out;
  }

  async function appendTo(
    creds: typeof source,
    raw: Buffer,
    flags: string[] = [],
  ): Promise<number> {
    const client = await openImap(dovecot, creds);
    try {
      const r = await client.append('INBOX', raw, flags);
      if (!r || !r.uid) throw new Error('no APPENDUID');
      return r.uid;
    } finally {
      await client.logout().catch(() => client.close());
    }
  }

  before(async () => {
    dir = makeTempDir('copy-phases');
    dovecot = await startDovecot({ name: 'phases', users: [source, destination] });
    uid.a = await appendTo(source, m.a, ['\\Seen']);
    uid.big = await appendTo(source, m.big);
    uid.c = await appendTo(source, m.c, ['\\Flagged']);
    uid.d = await appendTo(source, m.d, ['\\Answered']);
    dOrphan = await appendTo(destination, m.d);
    src = await openSession(side('source', source), timeouts, ['QRESYNC']);
    dst = await openSession(side('destination', destination), timeouts);
    cp = await Checkpoint.open(join(dir, 'INBOX.json'));
  });

  after(async () => {
    await cp?.close();
    await src?.close();
    await dst?.close();
    await dovecot?.stop();
    removeDir(dir);
  });

  test('prepareCheckpoint: the orphan above the old watermark goes into the pool; the new watermark is durable', async () => {
    // as left by a run killed after its APPEND of d: watermark 1, nothing mapped
    cp.setWatermark(1);
    boxes = await openFolders(src, dst, target, cp, DEFAULT_TUNING);
    outcomes = new FolderOutcomes(cp, ledger, stats, {
      folder: 'INBOX',
      uidValidity: boxes.sbox.uidValidity,
    });
    await prepareCheckpoint(
      dst,
      cp,
      boxes,
      {
        tuning: DEFAULT_TUNING,
        lost: 'restore',
        ledger,
        base: { folder: 'INBOX', uidValidity: 1 },
      },
      stats,
    );
    assert.deepEqual(cp.state.pool.get(dOrphan), {
      d: dOrphan,
      h: sha(m.d),
      z: m.d.length,
      k: 'orphan',
    });
    assert.equal(cp.state.watermark, boxes.dbox.uidNext);
    const reread = await Checkpoint.open(join(dir, 'INBOX.json'));
    assert.equal(reread.state.watermark, boxes.dbox.uidNext, 'fsynced before any APPEND');
    assert.equal(reread.state.pool.size, 1);
    await reread.close();
  });

  test('copyNewMessages: appends, matches by hash, skips over the limit and what vanished', async () => {
    let progressCalls = 0;
    const matched = await copyNewMessages(
      {
        src,
        dst,
        destination: 'INBOX',
        cp,
        outcomes,
        policy: boxes.policy,
        tuning: DEFAULT_TUNING,
        appendLimit: m.big.length - 1,
        onProgress: () => void progressCalls++,
      },
      [uid.a, uid.big, uid.c, uid.d, 999],
    );
    assert.deepEqual(matched, [{ s: uid.d, flags: ['\\Answered'] }]);
    assert.equal(stats.copied, 2);
    assert.equal(stats.matched, 1);
    assert.equal(stats.skipped, 2);
    assert.match(stats.notCopied.get(uid.big)?.reason ?? '', /APPENDLIMIT/);
    assert.equal(stats.notCopied.get(999)?.reason, 'expunged on the source during the copy');
    assert.equal(progressCalls, 3, 'once per message copied or matched');

    const onDst = await destinationBox();
    assert.equal(onDst.size, 3, 'a, c and the one copy of d: nothing doubled');
    const byHash = new Map([...onDst].map(([d, x]) => [x.sha256, { d, flags: x.flags }]));
    assert.deepEqual(byHash.get(sha(m.a))?.flags, ['\\Seen']);
    assert.deepEqual(byHash.get(sha(m.c))?.flags, ['\\Flagged']);
    assert.equal(byHash.has(sha(m.big)), false);
    assert.equal(cp.state.map.get(uid.a)?.d, byHash.get(sha(m.a))?.d);
    assert.equal(cp.state.map.get(uid.d)?.d, dOrphan);
    assert.equal(cp.state.map.get(uid.d)?.f, UNKNOWN_FLAGS);
    assert.deepEqual(
      stats.written.sort(),
      [byHash.get(sha(m.a))?.d, byHash.get(sha(m.c))?.d].sort(),
    );

    await setMatchedFlags(dst, cp, matched);
    assert.deepEqual((await destinationBox()).get(dOrphan)?.flags, ['\\Answered']);
    assert.equal(cp.state.map.get(uid.d)?.f, '\\Answered');
  });

  test('applyFlagChanges: one STORE per resulting set; map, ledger and counters follow', async () => {
    const flagsBefore = ledger.counts.flags;
    await applyFlagChanges(
      dst,
      cp,
      outcomes,
      new Map([
        [uid.a, ['\\Seen', '\\Flagged']],
        [uid.c, ['\\Flagged', '\\Seen']],
        [uid.d, []],
      ]),
    );
    const onDst = await destinationBox();
    const flagsOf = (s: number): string[] | undefined =>
      onDst.get(cp.state.map.get(s)?.d ?? 0)?.flags;
    assert.deepEqual(flagsOf(uid.a), ['\\Flagged', '\\Seen']);
    assert.deepEqual(flagsOf(uid.c), ['\\Flagged', '\\Seen']);
    assert.deepEqual(flagsOf(uid.d), []);
    assert.equal(cp.state.map.get(uid.a)?.f, '\\Flagged \\Seen');
    assert.equal(ledger.counts.flags - flagsBefore, 3);
    assert.equal(stats.flagsUpdated, 3);
  });

  test("settleDestination: a surplus copy of ours goes, someone else's message stays as extra", async () => {
    // an APPEND of c that a killed run had sent lands now, and a message nobody copied
    const surplus = await appendTo(destination, m.c);
    const foreign = await appendTo(destination, mail(5, 'put there by someone else'));
    // our session has INBOX selected: it sees another session's appends after a NOOP
    await dst.ok('NOOP');
    await settleDestination(dst, cp, DEFAULT_TUNING, stats);
    const onDst = await destinationBox();
    assert.equal(onDst.has(surplus), false);
    assert.equal(onDst.has(foreign), true);
    assert.equal(stats.expunged, 1);
    assert.equal(stats.extra, 1);
    assert.equal(cp.state.pool.size, 0);
  });

  test('removeExpunged: our copy of what the source expunged goes, by UID only', async () => {
    const dA = cp.state.map.get(uid.a)?.d ?? 0;
    const before = await destinationBox();
    await removeExpunged(dst, cp, outcomes, [uid.a]);
    const onDst = await destinationBox();
    assert.equal(onDst.has(dA), false);
    assert.equal(onDst.size, before.size - 1);
    assert.equal(cp.state.map.has(uid.a), false);
    assert.equal(ledger.counts.expunged, 1);
    assert.equal(stats.expunged, 2);
  });
});
