/**
 * The checkpoint's record of copies the user deleted on the destination (issue #12): the
 * "gone" operation, how UIDVALIDITY changes void it, the v1 -> v2 snapshot upgrade, and the
 * rule that decides whether a missing copy is made again.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  Checkpoint,
  CheckpointState,
  upgradeSnapshot,
  type CheckpointOp,
  type Snapshot,
  type SnapshotV1,
} from '../../src/core/transfer/copy/checkpoint.js';
import { lostPolicy } from '../../src/core/transfer/handover.js';

const dir = mkdtempSync(join(tmpdir(), 'cp-upgrade-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const m = (s: number, d: number): CheckpointOp => ({
  t: 'm',
  s,
  e: { d, h: `h${s}`, z: 100 + s, f: '\\Seen' },
});

/** A snapshot exactly as AutoPort wrote it before "gone" existed. */
const V1: SnapshotV1 = {
  v: 1,
  srcUv: 7,
  dstUv: 9,
  wm: 40,
  modseq: '1234',
  lastUid: 3,
  map: [
    [1, 31, 'h1', 101, '\\Seen'],
    [3, 33, 'h3', 103, ''],
  ],
  pool: [[35, 'hp', 50, 'orphan']],
};

describe('checkpoint: copies deleted on the destination', () => {
  test('"gone" moves a map entry out of the map, keeping its content; "x" forgets it', () => {
    const st = new CheckpointState();
    st.apply(m(1, 11));
    st.apply(m(2, 12));
    st.apply({ t: 'gone', s: 1 });
    assert.deepEqual([...st.map.keys()], [2]);
    assert.deepEqual(st.gone.get(1), { h: 'h1', z: 101 });
    assert.equal(st.boundDestUids().has(11), false);
    st.apply({ t: 'gone', s: 99 });
    assert.equal(st.gone.has(99), false, 'an unmapped UID is not recorded');
    st.apply({ t: 'x', s: 1 });
    assert.equal(st.gone.has(1), false);
  });

  test('a recreated destination folder voids deletions and forces a full source listing', () => {
    const st = new CheckpointState();
    st.apply({ t: 'head', srcUv: 1, dstUv: 5 });
    st.apply(m(1, 11));
    st.apply(m(2, 12));
    st.apply({ t: 'gone', s: 2 });
    st.apply({ t: 'ms', modseq: '777', lastUid: 2 });
    st.apply({ t: 'dstreset', dstUv: 6 });
    assert.equal(st.gone.size, 0);
    assert.equal(st.modseq, undefined);
    assert.equal(st.map.get(1)?.d, 0);
  });

  test('a recreated source folder voids deletions too (their source UIDs mean nothing)', () => {
    const st = new CheckpointState();
    st.apply(m(1, 11));
    st.apply({ t: 'gone', s: 1 });
    st.apply({ t: 'rebase', srcUv: 2 });
    assert.equal(st.gone.size, 0);
  });

  test('snapshot round trip keeps deletions', () => {
    const st = new CheckpointState();
    st.apply(m(1, 11));
    st.apply(m(2, 12));
    st.apply({ t: 'gone', s: 2 });
    const back = CheckpointState.fromSnapshot(st.toSnapshot());
    assert.deepEqual(back.toSnapshot(), st.toSnapshot());
    assert.deepEqual(back.gone.get(2), { h: 'h2', z: 102 });
  });
});

describe('checkpoint snapshot upgrade', () => {
  test('v1 is read as v2 with nothing deleted; v2 passes; an unknown version is refused', () => {
    const up = upgradeSnapshot(V1);
    assert.equal(up?.v, 2);
    assert.deepEqual(up?.gone, []);
    assert.deepEqual(up?.map, V1.map);
    const v2: Snapshot = { ...V1, v: 2, gone: [[2, 'h2', 102]] };
    assert.equal(upgradeSnapshot(v2), v2);
    assert.equal(upgradeSnapshot(undefined), undefined);
    assert.throws(
      () => upgradeSnapshot({ ...v2, v: 3 } as unknown as Snapshot),
      /version 3 is newer/,
    );
  });

  test('a v1 snapshot and journal on disk open, and are written back as v2', async () => {
    const path = join(dir, 'old.json');
    writeFileSync(path, JSON.stringify(V1));
    writeFileSync(`${path}.journal`, `${JSON.stringify(m(4, 34))}\n`);
    const cp = await Checkpoint.open(path);
    assert.deepEqual([...cp.state.map.keys()].sort(), [1, 3, 4]);
    assert.equal(cp.state.dstUv, 9);
    assert.equal(cp.state.watermark, 40);
    assert.equal(cp.state.modseq, '1234');
    assert.equal(cp.state.pool.get(35)?.k, 'orphan');
    assert.equal(cp.state.gone.size, 0);
    cp.deletedByUser(3);
    await cp.close();

    const onDisk = JSON.parse(readFileSync(path, 'utf8')) as Snapshot;
    assert.equal(onDisk.v, 2);
    assert.deepEqual(onDisk.gone, [[3, 'h3', 103]]);
    const again = await Checkpoint.open(path);
    assert.deepEqual([...again.state.map.keys()].sort(), [1, 4]);
    assert.deepEqual(again.state.gone.get(3), { h: 'h3', z: 103 });
    await again.close();
  });
});

describe('lostPolicy: is a copy missing on the destination made again?', () => {
  test('yes until the account is handed over to the user; after that only with --repair', () => {
    assert.equal(lostPolicy(false, false), 'restore');
    assert.equal(lostPolicy(true, false), 'respect');
    assert.equal(lostPolicy(true, true), 'restore-all');
    assert.equal(lostPolicy(false, true), 'restore-all');
  });
});
