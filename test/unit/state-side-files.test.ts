import assert from 'node:assert/strict';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import {
  readSideFile,
  removeSideFiles,
  resolveSideFile,
  sideFilePath,
  writeSideFile,
} from '../../src/core/state/side-files.js';
import { tempDir } from '../support/state-helpers.js';

test('side files live next to the state file and round-trip atomically', async (t) => {
  const dir = tempDir(t);
  const store = { location: join(dir, 'state.json') };
  const p = sideFilePath(store, 'User@Example.org', 'INBOX');
  assert.match(p.relative, /^state-data\/user@example\.org-[0-9a-f]{8}\/INBOX-[0-9a-f]{8}\.json$/);
  assert.equal(p.absolute, join(dir, p.relative));
  assert.equal(resolveSideFile(store, p.relative), p.absolute);

  assert.equal(await readSideFile(p.absolute), undefined, 'missing: nothing checkpointed yet');
  const map = {
    uidValidity: 7,
    pairs: [
      [1, 101],
      [2, 102],
    ],
  };
  await writeSideFile(p.absolute, map);
  assert.deepEqual(await readSideFile(p.absolute), map);
  await writeSideFile(p.absolute, { ...map, pairs: [] });
  assert.deepEqual(
    readdirSync(dirname(p.absolute)),
    [p.absolute.split('/').pop()],
    'no temp files left',
  );

  writeFileSync(p.absolute, '{"half');
  await assert.rejects(readSideFile(p.absolute), /side file .* is unreadable/);

  await removeSideFiles(store, 'user@example.org');
  assert.equal(existsSync(dirname(p.absolute)), false);
});

test('folder names that differ only in case, or are hostile, get distinct safe names', (t) => {
  const store = { location: join(tempDir(t), 'state.json') };
  const names = [
    'INBOX',
    'inbox',
    'Inbox',
    '../../etc/passwd',
    '.hidden',
    'a/b',
    'a%2fb',
    'x'.repeat(500),
    '\u00e9t\u00e9',
  ];
  const files = names.map((n) => sideFilePath(store, 'u@x', n).relative);
  assert.equal(new Set(files).size, names.length);
  for (const f of files) {
    const base = f.split('/').pop() ?? '';
    assert.equal(f.split('/').length, 3, f);
    assert.ok(!base.startsWith('.') && base.length < 120, base);
    assert.doesNotThrow(() => resolveSideFile(store, f));
  }
});

test('resolveSideFile refuses paths that leave the data directory', (t) => {
  const store = { location: join(tempDir(t), 'state.json') };
  for (const bad of [
    '../x.json',
    '/etc/passwd',
    'state-data/../../x',
    'state-data',
    'other/x.json',
  ]) {
    assert.throws(() => resolveSideFile(store, bad), /leaves/, bad);
  }
});

test("a store with a sideDir (PostgreSQL) keeps its side files there, paths relative to the folder's parent", (t) => {
  const dir = tempDir(t);
  const store = {
    location: 'postgresql://autoport@127.0.0.1:5432/autoport',
    sideDir: join(dir, 'state-data'),
  };
  const p = sideFilePath(store, 'a@example.org', 'INBOX');
  assert.match(p.relative, /^state-data\/a@example\.org-[0-9a-f]{8}\/INBOX-[0-9a-f]{8}\.json$/);
  assert.equal(p.absolute, join(dir, p.relative));
  assert.equal(resolveSideFile(store, p.relative), p.absolute);
  assert.throws(() => resolveSideFile(store, '../x.json'), /leaves/);
});
