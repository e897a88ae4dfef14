/**
 * The phases of copyFolder that need no server: where a message goes (skip, match, append),
 * how each outcome is written to the checkpoint, the ledger and the counters, how flag
 * changes are grouped, and the folder's result. The phases that talk to a server are tested
 * against a real Dovecot in test/integration/copy-folder-phases.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  Checkpoint,
  CheckpointState,
  UNKNOWN_FLAGS,
} from '../../src/core/transfer/copy/checkpoint.js';
import { placeMessage } from '../../src/core/transfer/copy/copy-new.js';
import { folderResult } from '../../src/core/transfer/copy/folder-copy.js';
import { groupByFlags } from '../../src/core/transfer/copy/folder-phases.js';
import { newFolderStats } from '../../src/core/transfer/copy/folder-result.js';
import { flagPolicy } from '../../src/core/transfer/copy/flags.js';
import { ledgerOver } from '../../src/core/transfer/copy/ledger.js';
import type { MailboxInfo } from '../../src/core/transfer/copy/mailbox.js';
import { FolderOutcomes } from '../../src/core/transfer/copy/outcomes.js';
import type { LedgerEntry } from '../../src/core/transfer/types.js';

const dir = mkdtempSync(join(tmpdir(), 'cp-phases-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let seq = 0;

const base = { folder: 'INBOX', uidValidity: 7 };

/** A checkpoint in a temp dir, a ledger whose lines are kept in memory, fresh counters. */
async function setup(): Promise<{
  cp: Checkpoint;
  lines: LedgerEntry[];
  outcomes: FolderOutcomes;
}> {
  const cp = await Checkpoint.open(join(dir, `cp-${++seq}.json`));
  const lines: LedgerEntry[] = [];
  const ledger = ledgerOver(
    {
      path: '',
      append: (e) => void lines.push(e),
      flush: async () => undefined,
      close: async () => undefined,
    },
    () => new Date(0),
  ).forAccount('alice@example.org');
  return { cp, lines, outcomes: new FolderOutcomes(cp, ledger, newFolderStats(), base) };
}

const box = (over: Partial<MailboxInfo> = {}): MailboxInfo => ({
  name: 'INBOX',
  uidValidity: 7,
  uidNext: 100,
  exists: 3,
  permanentFlags: null,
  noModseq: false,
  readOnly: false,
  vanished: [],
  changed: [],
  ...over,
});

describe('placeMessage: skip, match or append', () => {
  const state = new CheckpointState();
  state.apply({ t: 'p', e: { d: 40, h: 'aaa', z: 10, k: 'orphan' } });

  test('over the APPENDLIMIT it is skipped, with the sizes in the reason', () => {
    const p = placeMessage({ sha256: 'aaa', size: 11 }, state, 10);
    assert.equal(p.kind, 'skip');
    assert.match(p.kind === 'skip' ? p.reason : '', /^11 bytes is over .*APPENDLIMIT of 10 bytes$/);
  });

  test('the same bytes in the pool are matched; a message at the limit is not skipped', () => {
    assert.deepEqual(placeMessage({ sha256: 'aaa', size: 10 }, state, 10), {
      kind: 'match',
      hit: { d: 40, h: 'aaa', z: 10, k: 'orphan' },
    });
  });

  test('a hash hit with another size, or no hit, is appended', () => {
    assert.deepEqual(placeMessage({ sha256: 'aaa', size: 9 }, state, undefined), {
      kind: 'append',
    });
    assert.deepEqual(placeMessage({ sha256: 'bbb', size: 10 }, state, undefined), {
      kind: 'append',
    });
  });
});

describe('FolderOutcomes: one outcome, written to checkpoint, ledger and counters', () => {
  test('copied: mapped with hash, size and flags; ledger line; counters; written UIDs', async () => {
    const { cp, lines, outcomes } = await setup();
    outcomes.copied(5, { destUid: 50, sha256: 'h5', size: 120, flags: ['\\Seen', '$Label'] });
    outcomes.copied(6, { destUid: 0, sha256: 'h6', size: 30, flags: [] });
    assert.deepEqual(cp.state.map.get(5), { d: 50, h: 'h5', z: 120, f: '$Label \\Seen' });
    assert.deepEqual(cp.state.map.get(6), { d: 0, h: 'h6', z: 30, f: '' });
    assert.deepEqual(lines, [
      {
        ts: new Date(0).toISOString(),
        account: 'alice@example.org',
        ...base,
        uid: 5,
        outcome: 'copied',
        destUid: 50,
        size: 120,
        sha256: 'h5',
      },
      {
        ts: new Date(0).toISOString(),
        account: 'alice@example.org',
        ...base,
        uid: 6,
        outcome: 'copied',
        destUid: undefined,
        size: 30,
        sha256: 'h6',
      },
    ]);
    assert.equal(outcomes.stats.copied, 2);
    assert.equal(outcomes.stats.copiedBytes, 150);
    assert.deepEqual(outcomes.stats.written, [50], 'a copy without APPENDUID is not listed');
    await cp.close();
  });

  test('matched: bound to the pool entry with flags unknown, which leaves the pool', async () => {
    const { cp, lines, outcomes } = await setup();
    cp.addToPool({ d: 41, h: 'hx', z: 9, k: 'orphan' });
    outcomes.matched(3, { d: 41, h: 'hx', z: 9, k: 'orphan' });
    assert.deepEqual(cp.state.map.get(3), { d: 41, h: 'hx', z: 9, f: UNKNOWN_FLAGS });
    assert.equal(cp.state.pool.size, 0);
    assert.equal(lines[0]?.outcome, 'matched');
    assert.equal(lines[0]?.destUid, 41);
    assert.equal(outcomes.stats.matched, 1);
    await cp.close();
  });

  test('expunged: the ledger names the destination UID the map had; the map forgets it', async () => {
    const { cp, lines, outcomes } = await setup();
    cp.bind(2, { d: 20, h: 'h2', z: 1, f: '' });
    outcomes.expunged(2);
    assert.equal(cp.state.map.has(2), false);
    assert.equal(lines[0]?.outcome, 'expunged');
    assert.equal(lines[0]?.destUid, 20);
    assert.equal(outcomes.stats.expunged, 1);
    await cp.close();
  });

  test('flagsSet: the map holds the flags written; ledger and counter follow', async () => {
    const { cp, lines, outcomes } = await setup();
    cp.bind(2, { d: 20, h: 'h2', z: 1, f: '' });
    outcomes.flagsSet(2, '\\Flagged \\Seen');
    assert.equal(cp.state.map.get(2)?.f, '\\Flagged \\Seen');
    assert.deepEqual([lines[0]?.outcome, lines[0]?.destUid], ['flags', 20]);
    assert.equal(outcomes.stats.flagsUpdated, 1);
    await cp.close();
  });

  test('notCopied: a message retried in the same run counts once, under its last outcome', async () => {
    const { cp, lines, outcomes } = await setup();
    outcomes.notCopied(9, { outcome: 'failed', reason: 'NO quota' }, { size: 5, sha256: 'h9' });
    outcomes.notCopied(9, { outcome: 'skipped', reason: 'expunged on the source during the copy' });
    assert.equal(outcomes.stats.failed, 0);
    assert.equal(outcomes.stats.skipped, 1);
    assert.deepEqual(outcomes.stats.notCopied.get(9), {
      outcome: 'skipped',
      reason: 'expunged on the source during the copy',
    });
    assert.deepEqual(
      lines.map((l) => [l.outcome, l.size, l.sha256, l.reason]),
      [
        ['failed', 5, 'h9', 'NO quota'],
        ['skipped', undefined, undefined, 'expunged on the source during the copy'],
      ],
    );
    assert.equal(cp.state.map.size, 0, 'nothing is mapped for a message not copied');
    await cp.close();
  });
});

describe('groupByFlags: one UID STORE per resulting flag set', () => {
  test('groups by the canonical flag set, leaving out messages without a destination UID', async () => {
    const { cp } = await setup();
    cp.bind(1, { d: 11, h: 'a', z: 1, f: '' });
    cp.bind(2, { d: 12, h: 'b', z: 1, f: '' });
    cp.bind(3, { d: 13, h: 'c', z: 1, f: '' });
    cp.bind(4, { d: 0, h: 'd', z: 1, f: '' });
    const groups = groupByFlags(
      cp,
      new Map([
        [1, ['\\seen', '\\Flagged']],
        [2, ['\\Flagged', '\\Seen']],
        [3, []],
        [4, ['\\Seen']],
        [5, ['\\Seen']],
      ]),
    );
    assert.deepEqual(
      [...groups],
      [
        ['\\Flagged \\Seen', [1, 2]],
        ['', [3]],
      ],
    );
    await cp.close();
  });
});

describe('folderResult', () => {
  test('bytes are what the checkpoint maps; dropped flags sorted; counters carried', async () => {
    const { cp, outcomes } = await setup();
    cp.bind(1, { d: 11, h: 'a', z: 100, f: '' });
    cp.bind(2, { d: 12, h: 'b', z: 23, f: '' });
    outcomes.stats.dropped.add('$Zeta').add('$Alpha');
    outcomes.copied(3, { destUid: 13, sha256: 'c', size: 7, flags: [] });
    const policy = flagPolicy(null);
    const r = folderResult(
      { source: 'Sent', destination: 'Sent Items' },
      { sbox: box({ highestModseq: '55', exists: 3 }), dbox: box({ uidValidity: 9 }), policy },
      'listing',
      { lastUid: 3 },
      cp,
      outcomes.stats,
    );
    assert.equal(r.bytes, 130);
    assert.deepEqual(r.droppedFlags, ['$Alpha', '$Zeta']);
    assert.equal(r.copied, 1);
    assert.equal(r.messages, 3);
    assert.equal(r.destUidValidity, 9);
    assert.equal(r.highestModseq, '55');
    assert.equal('dropped' in r, false);
    await cp.close();
  });
});
