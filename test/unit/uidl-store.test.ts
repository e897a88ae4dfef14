/**
 * The UIDL continuity map (src/core/transfer/uidl/store.ts) in the JSON store's side
 * data: a side file beside the state like the copy's checkpoints; it survives a restart (a
 * new reader), and the gateway's cache notices a newer file and a removed one. (The
 * PostgreSQL store's side data: test/integration/state-cluster.test.ts.)
 */
import assert from 'node:assert/strict';
import { rmSync, utimesSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { FileSideData } from '../../src/core/state/side-data.js';
import { sideFilePath } from '../../src/core/state/side-files.js';
import { loadUidls, saveUidls, UidlMaps } from '../../src/core/transfer/uidl/store.js';
import { makeTempDir, removeDir } from '../support/index.js';

const match = (pairs: Array<[string, string]>) => ({
  pairs,
  matched: pairs.length,
  ambiguous: 2,
  unmatched: 1,
});

describe('UIDL map side file', () => {
  const dir = makeTempDir('uidl-store');
  after(() => removeDir(dir));
  const location = { location: join(dir, 'state.json') };
  const store = { side: new FileSideData(location) };
  const uidlFilePath = (_: unknown, address: string) =>
    sideFilePath(location, address, 'pop3-uidls').absolute;

  it('is written beside the state and read back by a new reader', async () => {
    await saveUidls(store, 'Alice@Example.org', match([['d1', 's1']]), new Date(0));
    assert.equal(
      dirname(dirname(uidlFilePath(store, 'alice@example.org'))),
      join(dir, 'state-data'),
    );
    const f = await loadUidls(store, 'alice@example.org');
    assert.deepEqual(f?.pairs, [['d1', 's1']]);
    assert.deepEqual([f?.matched, f?.ambiguous, f?.unmatched], [1, 2, 1]);
    const maps = new UidlMaps(store);
    assert.equal((await maps.get('ALICE@example.org'))?.get('d1'), 's1');
  });

  it('the gateway cache sees a newer map, an empty one and a removed one', async () => {
    const maps = new UidlMaps(store);
    const path = uidlFilePath(store, 'bob@example.org');
    assert.equal(await maps.get('bob@example.org'), undefined);
    await saveUidls(store, 'bob@example.org', match([['d1', 's1']]), new Date(0));
    assert.equal((await maps.get('bob@example.org'))?.get('d1'), 's1');
    await saveUidls(store, 'bob@example.org', match([['d1', 'other']]), new Date(0));
    utimesSync(path, new Date(), new Date(Date.now() + 5000));
    assert.equal((await maps.get('bob@example.org'))?.get('d1'), 'other');
    await saveUidls(store, 'bob@example.org', match([]), new Date(0));
    utimesSync(path, new Date(), new Date(Date.now() + 10_000));
    assert.equal(await maps.get('bob@example.org'), undefined);
    rmSync(path);
    assert.equal(await maps.get('bob@example.org'), undefined);
  });
});
