/** The account admin functions over a real JSON store in a temp dir. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import {
  excludeAccount,
  forgetCredentials,
  IMPORT_CONCURRENCY,
  importAccounts,
  importAddresses,
  includeAccount,
  listAccounts,
  openAccountStore,
  parseAccountList,
  retryAccount,
  showAccount,
  withReadOnlyStore,
  withWritableStore,
} from '../../src/core/accounts/index.js';
import { renderAccount, renderAccountList } from '../../src/cli/render-accounts.js';
import { OperatorError } from '../../src/core/errors.js';
import { openJsonStore } from '../../src/core/state/json-store.js';
import type { StateStore } from '../../src/core/state/types.js';

const SEALED = { kid: 'k1', iv: 'aXY=', tag: 'dGFn', data: 'c2VjcmV0' };

async function fixture(t: TestContext): Promise<{ path: string; store: StateStore }> {
  const dir = mkdtempSync(join(tmpdir(), 'ap-accounts-'));
  const path = join(dir, 'state.json');
  const store = await openJsonStore(path, { saveDelayMs: 1 });
  t.after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  await store.upsert('alice@example.org', {
    state: 'migrated',
    credentials: SEALED,
    lastLogin: '2026-11-02T08:00:00.000Z',
    transfer: { messages: 10, bytes: 1000, copied: 10, skipped: 0, failed: 0 },
  });
  await store.upsert('bob@example.org', {
    state: 'failed',
    credentials: SEALED,
    reason: 'quota exceeded',
    attempts: 5,
    nextAttemptAt: '2026-11-21T00:00:00.000Z',
    errors: [{ at: '2026-11-03T00:00:00.000Z', cause: 'transfer', detail: 'quota exceeded' }],
  });
  await store.upsert('carol@example.org', { state: 'captured', credentials: SEALED });
  await store.upsert('dave@example.org', { state: 'unknown', imported: true });
  await store.upsert('erin@example.org', { state: 'transferring', credentials: SEALED });
  await store.upsert('nopw@example.org', { state: 'failed', reason: 'x' });
  return { path, store };
}

function isOp(code: string) {
  return (err: unknown): boolean =>
    err instanceof OperatorError && err.code === code && err.hint.length > 0;
}

describe('accounts list / show', () => {
  it('lists sorted, filtered by state, import mark and text, without the sealed password', async (t) => {
    const { store } = await fixture(t);
    assert.deepEqual(
      (await listAccounts(store)).map((a) => a.address),
      [
        'alice@example.org',
        'bob@example.org',
        'carol@example.org',
        'dave@example.org',
        'erin@example.org',
        'nopw@example.org',
      ],
    );
    assert.deepEqual(
      (await listAccounts(store, { state: ['failed', 'captured'] })).map((a) => a.address),
      ['bob@example.org', 'carol@example.org', 'nopw@example.org'],
    );
    assert.deepEqual(
      (await listAccounts(store, { imported: true })).map((a) => a.address),
      ['dave@example.org'],
    );
    assert.equal((await listAccounts(store, { imported: false })).length, 5);
    assert.deepEqual(
      (await listAccounts(store, { match: 'CAR' })).map((a) => a.address),
      ['carol@example.org'],
    );
    const bob = (await listAccounts(store, { match: 'bob' }))[0]!;
    assert.deepEqual(bob, {
      address: 'bob@example.org',
      state: 'failed',
      hasCredentials: true,
      imported: false,
      updatedAt: bob.updatedAt,
      reason: 'quota exceeded',
      attempts: 5,
      nextAttemptAt: '2026-11-21T00:00:00.000Z',
      lastError: { at: '2026-11-03T00:00:00.000Z', cause: 'transfer', detail: 'quota exceeded' },
    });
    const text = renderAccountList(await listAccounts(store));
    assert.match(text, /^bob@example\.org\s+failed\s+yes\s+no\s+quota exceeded$/m);
    assert.match(text, /^6 account\(s\)$/m);
    assert.doesNotMatch(JSON.stringify(await listAccounts(store)), /c2VjcmV0|credentials/);
  });

  it('shows one account; an unknown one is an operator error', async (t) => {
    const { store } = await fixture(t);
    const a = await showAccount(store, 'ALICE@example.org');
    assert.equal(a.state, 'migrated');
    assert.equal(a.hasCredentials, true);
    assert.deepEqual(a.errors, []);
    assert.doesNotMatch(JSON.stringify(a), /c2VjcmV0|credentials/);
    assert.match(
      renderAccount(a),
      /^transfer\s+10 copied, 0 skipped, 0 failed of 10 \(1000 bytes\)$/m,
    );
    await assert.rejects(
      async () => await showAccount(store, 'zed@example.org'),
      isOp('ENOACCOUNT'),
    );
  });
});

describe('accounts exclude / include', () => {
  it('excludes with a reason, also an address never seen, and includes back', async (t) => {
    const { store } = await fixture(t);
    const r = await excludeAccount(store, 'carol@example.org', 'shared mailbox');
    assert.deepEqual([r.before, r.after, r.changed], ['captured', 'excluded', true]);
    assert.equal((await store.get('carol@example.org'))?.reason, 'shared mailbox');
    assert.equal((await excludeAccount(store, 'carol@example.org')).changed, false);

    const n = await excludeAccount(store, 'New@Example.org');
    assert.deepEqual([n.address, n.before, n.after], ['new@example.org', undefined, 'excluded']);
    assert.equal((await store.get('new@example.org'))?.reason, 'excluded by the administrator');

    const back = await includeAccount(store, 'carol@example.org');
    assert.deepEqual([back.before, back.after, back.changed], ['excluded', 'captured', true]);
    assert.equal((await store.get('carol@example.org'))?.reason, undefined);
    assert.equal((await includeAccount(store, 'new@example.org')).after, 'unknown');
    assert.equal((await includeAccount(store, 'alice@example.org')).changed, false);
  });

  it('refuses to exclude a migrated account or one being moved', async (t) => {
    const { store } = await fixture(t);
    await assert.rejects(
      async () => await excludeAccount(store, 'alice@example.org'),
      isOp('EACCOUNTSTATE'),
    );
    await assert.rejects(
      async () => await excludeAccount(store, 'erin@example.org'),
      isOp('EACCOUNTSTATE'),
    );
    assert.equal((await store.get('alice@example.org'))?.state, 'migrated');
  });
});

describe('accounts retry', () => {
  it('sets a failed account back to captured, keeps the password, clears the back-off', async (t) => {
    const { store } = await fixture(t);
    const r = await retryAccount(store, 'bob@example.org');
    assert.deepEqual([r.before, r.after, r.changed], ['failed', 'captured', true]);
    const bob = (await store.get('bob@example.org'))!;
    assert.deepEqual(bob.credentials, SEALED);
    assert.equal(bob.nextAttemptAt, undefined);
    assert.equal(bob.attempts, 0);
    assert.equal(bob.reason, undefined);
    assert.equal(bob.errors.length, 1, 'the history stays');
    assert.equal((await retryAccount(store, 'bob@example.org')).changed, false);
  });

  it('refuses other states and a failed account without a password', async (t) => {
    const { store } = await fixture(t);
    await assert.rejects(
      async () => await retryAccount(store, 'alice@example.org'),
      isOp('EACCOUNTSTATE'),
    );
    await assert.rejects(
      async () => await retryAccount(store, 'nopw@example.org'),
      isOp('ENOCREDENTIALS'),
    );
    await assert.rejects(
      async () => await retryAccount(store, 'zed@example.org'),
      isOp('ENOACCOUNT'),
    );
    assert.equal((await store.get('nopw@example.org'))?.state, 'failed');
  });
});

describe('accounts forget-credentials', () => {
  it('removes the password; captured and failed go back to unknown, migrated stays', async (t) => {
    const { store } = await fixture(t);
    const c = await forgetCredentials(store, 'carol@example.org');
    assert.deepEqual([c.before, c.after, c.changed], ['captured', 'unknown', true]);
    assert.equal((await store.get('carol@example.org'))?.credentials, undefined);
    assert.equal((await forgetCredentials(store, 'bob@example.org')).after, 'unknown');
    const a = await forgetCredentials(store, 'alice@example.org');
    assert.deepEqual([a.after, a.changed], ['migrated', true]);
    assert.equal((await store.get('alice@example.org'))?.credentials, undefined);
    assert.equal((await forgetCredentials(store, 'alice@example.org')).changed, false);
    await assert.rejects(
      async () => await forgetCredentials(store, 'erin@example.org'),
      isOp('EACCOUNTSTATE'),
    );
  });
});

describe('accounts import', () => {
  it('parses one address per line with # comments, blank lines, CRLF and duplicates', () => {
    const p = parseAccountList(
      '\uFEFF# all accounts\r\nAlice@Example.org\r\n\r\n  bob@example.org   # the boss\nalice@example.org\nlogin-only\n',
    );
    assert.deepEqual(p, {
      addresses: ['alice@example.org', 'bob@example.org', 'login-only'],
      duplicates: 1,
      problems: [],
    });
  });

  it('reports bad lines with their numbers', () => {
    const p = parseAccountList(
      'ok@example.org\ntwo words@example.org\n@example.org\nuser@\nctl\u0001@x\n',
    );
    assert.deepEqual(
      p.problems.map((x) => x.line),
      [2, 3, 4, 5],
    );
  });

  it('adds new records, marks known ones, changes no state; all or nothing', async (t) => {
    const { store } = await fixture(t);
    const r = await importAccounts(
      store,
      'alice@example.org\ndave@example.org\nfrank@example.org\n',
    );
    assert.deepEqual(r, { added: 1, marked: 1, unchanged: 1, duplicates: 0, total: 3 });
    assert.equal((await store.get('alice@example.org'))?.state, 'migrated');
    assert.equal((await store.get('alice@example.org'))?.imported, true);
    assert.deepEqual(
      [
        (await store.get('frank@example.org'))?.state,
        (await store.get('frank@example.org'))?.imported,
      ],
      ['unknown', true],
    );
    const before = await store.count();
    await assert.rejects(
      async () => await importAccounts(store, 'gina@example.org\nbad line\n', 'all.txt'),
      (err: unknown) =>
        isOp('EIMPORT')(err) &&
        /all\.txt has 1 bad line.*line 2 "bad line"/.test((err as Error).message),
    );
    assert.equal(await store.count(), before);
    assert.equal(await store.get('gina@example.org'), undefined);
  });
});

describe('accounts import: many addresses', () => {
  it('one update() each (no get), at most IMPORT_CONCURRENCY at once; an imported record is not written', async (t) => {
    const { store } = await fixture(t);
    await store.upsert('known@example.org', { imported: true });
    let flying = 0;
    let most = 0;
    let gets = 0;
    const written: string[] = [];
    const counting = Object.create(store) as StateStore;
    counting.get = async (a) => {
      gets++;
      return store.get(a);
    };
    counting.update = async (a, fn) => {
      flying++;
      most = Math.max(most, flying);
      await new Promise((r) => setTimeout(r, 1));
      try {
        const rec = await store.update(a, fn);
        written.push(a);
        return rec;
      } finally {
        flying--;
      }
    };
    const addresses = ['known@example.org', 'alice@example.org'];
    for (let i = 0; i < 200; i++) addresses.push(`u${i}@example.org`);
    const r = await importAddresses(counting, addresses);
    assert.deepEqual(r, { added: 200, marked: 1, unchanged: 1, duplicates: 0, total: 202 });
    assert.equal(gets, 0);
    assert.equal(most, IMPORT_CONCURRENCY);
    assert.ok(!written.includes('known@example.org'), 'the imported record was left alone');
    assert.equal(written.length, 201);
    assert.equal((await store.get('u199@example.org'))?.imported, true);
  });

  it('a failing store stops the import: the first error is thrown, nothing more is started', async (t) => {
    const { store } = await fixture(t);
    const before = await store.count();
    let calls = 0;
    const failing = Object.create(store) as StateStore;
    failing.update = async (a, fn) => {
      if (++calls === 5) throw new Error('database went away');
      await new Promise((r) => setTimeout(r, 1));
      return store.update(a, fn);
    };
    const addresses = Array.from({ length: 500 }, (_, i) => `f${i}@example.org`);
    await assert.rejects(importAddresses(failing, addresses, 4), /database went away/);
    assert.ok(calls <= 8, `${calls} updates started`);
    const added = (await store.count()) - before;
    assert.ok(added >= 4 && added <= 7, `${added} records added`);
  });
});

describe('opening the store', () => {
  it('reads while another writer holds the lock; a change fails with the lock message and the hint', async (t) => {
    const { path, store } = await fixture(t);
    await store.flush();
    const where = { state: path, stateDir: dirname(path) };
    const list = await withReadOnlyStore(where, (s) => listAccounts(s));
    assert.equal(list.length, 6);
    await assert.rejects(
      withWritableStore(where, (s) => excludeAccount(s, 'carol@example.org')),
      (err: unknown) =>
        isOp('ESTORELOCKED')(err) &&
        /owns .*state\.json/.test((err as Error).message) &&
        /go through its control socket/.test((err as OperatorError).hint) &&
        /starting or stopping \(try again in a moment\)/.test((err as OperatorError).hint),
    );
    assert.equal((await store.get('carol@example.org'))?.state, 'captured');
  });

  it('a change is saved and the lock released', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'ap-accounts-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const where = { state: join(dir, 'state.json'), stateDir: dir };
    await withWritableStore(where, (s) => excludeAccount(s, 'x@example.org', 'test'));
    const again = await openAccountStore(where);
    assert.equal((await again.get('x@example.org'))?.state, 'excluded');
    await again.close();
  });
});
