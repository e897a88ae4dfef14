import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  Checkpoint,
  CheckpointState,
  parseJournal,
  UNKNOWN_FLAGS,
  type CheckpointOp,
  type MapEntry,
} from '../../src/core/transfer/copy/checkpoint.js';

const dir = mkdtempSync(join(tmpdir(), 'cp-unit-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const entry = (s: number, d: number, h = `h${s}`): MapEntry => ({ d, h, z: 100 + s, f: '\\Seen' });
const m = (s: number, d: number, h = `h${s}`): CheckpointOp => ({ t: 'm', s, e: entry(s, d, h) });

describe('CheckpointState', () => {
  test('maps, flags, expunges and lastUid', () => {
    const st = new CheckpointState();
    for (const op of [
      { t: 'head', srcUv: 7, dstUv: 9 } as const,
      m(1, 11),
      m(2, 12),
      { t: 'f', s: 2, f: '' } as const,
      { t: 'x', s: 1 } as const,
    ])
      st.apply(op);
    assert.deepEqual([...st.map.keys()], [2]);
    assert.equal(st.map.get(2)?.f, '');
    assert.equal(st.lastUid, 2);
  });

  test('a source UIDVALIDITY change moves the map into the pool, matched again by hash', () => {
    const st = new CheckpointState();
    st.apply({ t: 'head', srcUv: 1, dstUv: 5 });
    st.apply(m(1, 11, 'aaa'));
    st.apply(m(2, 12, 'bbb'));
    st.apply({ t: 'rebase', srcUv: 2 });
    assert.equal(st.map.size, 0);
    assert.equal(st.pool.size, 2);
    assert.equal(st.findInPool('bbb', 102)?.d, 12);
    assert.equal(st.findInPool('bbb', 999), undefined, 'size must match too');
    st.apply({ t: 'm', s: 40, e: { d: 12, h: 'bbb', z: 102, f: '' } });
    assert.equal(st.findInPool('bbb', 102), undefined, 'a bound entry leaves the pool');
  });

  test('identical messages each consume one pool entry', () => {
    const st = new CheckpointState();
    st.apply({ t: 'p', e: { d: 20, h: 'same', z: 5, k: 'orphan' } });
    st.apply({ t: 'p', e: { d: 21, h: 'same', z: 5, k: 'orphan' } });
    const first = st.findInPool('same', 5);
    st.apply({ t: 'm', s: 1, e: { d: first!.d, h: 'same', z: 5, f: '' } });
    const second = st.findInPool('same', 5);
    assert.notEqual(second?.d, first?.d);
    st.apply({ t: 'm', s: 2, e: { d: second!.d, h: 'same', z: 5, f: '' } });
    assert.equal(st.findInPool('same', 5), undefined);
  });

  test('a destination UIDVALIDITY change forgets destination UIDs and rescans from UID 1', () => {
    const st = new CheckpointState();
    st.apply(m(1, 11));
    st.apply({ t: 'wm', uid: 50 });
    st.apply({ t: 'dstreset', dstUv: 99 });
    assert.equal(st.map.get(1)?.d, 0);
    assert.equal(st.watermark, 1);
  });

  test('replaying a journal over a snapshot that already has it changes nothing', () => {
    const ops: CheckpointOp[] = [
      { t: 'head', srcUv: 1, dstUv: 2 },
      m(1, 10),
      m(2, 11),
      { t: 'rebase', srcUv: 3 },
      m(5, 10, 'h1'),
      { t: 'wm', uid: 12 },
      { t: 'x', s: 5 },
    ];
    const once = new CheckpointState();
    for (const op of ops) once.apply(op);
    const twice = CheckpointState.fromSnapshot(once.toSnapshot());
    for (const op of ops) twice.apply(op);
    assert.deepEqual(twice.toSnapshot(), once.toSnapshot());
  });
});

describe('Checkpoint on disk', () => {
  test('a torn last line (kill -9 mid-write) is ignored and cut off', async () => {
    const path = join(dir, 'torn.json');
    const cp = await Checkpoint.open(path);
    cp.setHeads(1, 2);
    cp.bind(1, entry(1, 10));
    cp.commit();
    appendFileSync(cp.journalPath, '{"t":"m","s":2,"e":{"d":11,"h');
    const again = await Checkpoint.open(path);
    assert.deepEqual([...again.state.map.keys()], [1]);
    assert.ok(readFileSync(again.journalPath, 'utf8').endsWith('\n'));
    again.bind(3, entry(3, 12));
    await again.close();
    const third = await Checkpoint.open(path);
    assert.deepEqual([...third.state.map.keys()].sort(), [1, 3]);
    await third.close();
    await cp.close();
  });

  test('uncommitted records are lost, committed ones survive', async () => {
    const path = join(dir, 'commit.json');
    const cp = await Checkpoint.open(path);
    cp.bind(1, entry(1, 10));
    cp.commit();
    cp.bind(2, entry(2, 11)); // never committed: as after a kill -9
    const other = await Checkpoint.open(path);
    assert.deepEqual([...other.state.map.keys()], [1]);
    await other.close();
  });

  test('each operation writes the journal line earlier versions wrote and read', async () => {
    const path = join(dir, 'codes.json');
    const cp = await Checkpoint.open(path);
    cp.setHeads(1, 2);
    cp.setWatermark(30);
    cp.bind(1, entry(1, 10));
    cp.flagsWritten(1, '');
    cp.addToPool({ d: 31, h: 'hp', z: 7, k: 'orphan' });
    cp.bindToPool(2, { d: 31, h: 'hp', z: 7, k: 'orphan' });
    cp.addToPool({ d: 32, h: 'hq', z: 8, k: 'orphan' });
    cp.removeFromPool(32);
    cp.deletedByUser(1);
    cp.forget(2);
    cp.setProgress(2, '99');
    cp.setProgress(2, undefined);
    cp.sourceRecreated(3);
    cp.destinationRecreated(4);
    cp.commit();
    assert.deepEqual(parseJournal(readFileSync(cp.journalPath, 'utf8')), [
      { t: 'head', srcUv: 1, dstUv: 2 },
      { t: 'wm', uid: 30 },
      m(1, 10),
      { t: 'f', s: 1, f: '' },
      { t: 'p', e: { d: 31, h: 'hp', z: 7, k: 'orphan' } },
      { t: 'm', s: 2, e: { d: 31, h: 'hp', z: 7, f: UNKNOWN_FLAGS } },
      { t: 'p', e: { d: 32, h: 'hq', z: 8, k: 'orphan' } },
      { t: 'pd', d: 32 },
      { t: 'gone', s: 1 },
      { t: 'x', s: 2 },
      { t: 'ms', modseq: '99', lastUid: 2 },
      { t: 'ms', modseq: '', lastUid: 2 },
      { t: 'rebase', srcUv: 3 },
      { t: 'dstreset', dstUv: 4 },
    ]);
    assert.equal(UNKNOWN_FLAGS, '?', 'journals on disk hold "?" for flags not known yet');
    await cp.close();
  });

  test('the watermark is durable as soon as it is set (step 1), before any commit', async () => {
    const path = join(dir, 'watermark.json');
    const cp = await Checkpoint.open(path);
    cp.bind(1, entry(1, 10));
    cp.setWatermark(11);
    const other = await Checkpoint.open(path);
    assert.equal(other.state.watermark, 11);
    assert.deepEqual([...other.state.map.keys()], [1], 'what was recorded before it too');
    await other.close();
    await cp.close();
  });

  test('parseJournal skips garbage lines', () => {
    assert.deepEqual(parseJournal('{"t":"wm","uid":3}\nnot json\n{"x":1}\n'), [
      { t: 'wm', uid: 3 },
    ]);
  });
});
