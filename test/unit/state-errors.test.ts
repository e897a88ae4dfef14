/** What a store that cannot save says to try: a file's disk, or a database's reachability. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StoreUnavailableError } from '../../src/core/state/errors.js';

const fault = (message: string, code: string) => Object.assign(new Error(message), { code });

test('a database that does not answer: check PostgreSQL, not the disk; the change was not made', () => {
  const e = new StoreUnavailableError(
    'postgresql://autoport@db.example.org/autoport',
    fault('connect ECONNREFUSED 192.0.2.5:5432', 'ECONNREFUSED'),
  );
  assert.match(e.message, /pg_isready/);
  assert.match(e.message, /this change was not made/);
  assert.doesNotMatch(e.message, /disk|retried every second/);
  const full = new StoreUnavailableError(
    'postgresql://db/x',
    fault('could not extend file', '53100'),
  );
  assert.match(full.message, /Free space on the database server/);
});

test('a state file: the disk, and the save is retried', () => {
  const e = new StoreUnavailableError('/var/lib/autoport/state.json', fault('no space', 'ENOSPC'));
  assert.match(e.message, /Free space on its file system; saving is retried every second/);
  const ro = new StoreUnavailableError('/var/lib/autoport/state.json', fault('read-only', 'EROFS'));
  assert.match(ro.message, /Make its folder writable again/);
});
