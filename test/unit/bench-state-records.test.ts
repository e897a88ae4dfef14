/**
 * bench:state fills its large sizes with copies of templates (bench/state-records.ts):
 * each copy must be the account it stands for, in state, folders, domain and credentials'
 * presence, or the figures at 1,000,000 accounts measure another site than the one at
 * 100,000.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { generateKeyFile, loadKeyring } from '../../src/core/state/crypto.js';
import type { AccountRecord } from '../../src/core/state/types.js';
import {
  addressOf,
  fromTemplate,
  makeRecord,
  makeTemplates,
  recordJson,
  stateOf,
} from '../../bench/state-records.js';

const dir = mkdtempSync(join(tmpdir(), 'ap-bench-records-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test("a template's copy is the account it stands for, but for dates and counts", async () => {
  await generateKeyFile(join(dir, 'key'));
  const keyring = loadKeyring(join(dir, 'key'));
  const templates = makeTemplates(keyring);
  const sample = [0, 1, 4, 5, 8, 9, 39, 40, 123, 10_004, 20_004, 99_999, 999_999, 1_000_000];
  for (const i of sample) {
    const copy = JSON.parse(recordJson(i, templates, keyring)) as AccountRecord;
    const real = makeRecord(i, keyring);
    assert.equal(copy.address, addressOf(i), `address of ${i}`);
    assert.equal(copy.state, stateOf(i), `state of ${i}`);
    assert.deepEqual(Object.keys(copy.folders), Object.keys(real.folders), `folders of ${i}`);
    for (const f of Object.values(copy.folders))
      assert.match(f.uidMap ?? '', new RegExp(`/user${i}@`));
    assert.equal(
      copy.credentials !== undefined,
      real.credentials !== undefined,
      `credentials of ${i}`,
    );
    assert.equal(JSON.stringify(copy).includes(`user${i}@`), true);
  }
  // the rare transfer in flight is no template's copy: made by makeRecord itself
  assert.equal(stateOf(10_004), 'transferring');
  assert.equal(fromTemplate(10_004), false);
  assert.equal(fromTemplate(10_014), true);
});
