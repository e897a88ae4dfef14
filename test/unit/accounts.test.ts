/** The account admin functions over a real JSON store in a temp dir. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import {
  excludeAccount,
  forgetCredentials,
  importAccounts,
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
  store.upsert('alice@example.org', {
    state: 'migrated',
    credentials: SEALED,
    lastLogin: '2026-11-02T08:00:00.000Z',
    transfer: { messages: 10, bytes: 1000, copied: 10, skipped: 0, failed: 0 },
  });
  store.upsert('bob@example.org', {
    state: 'failed',
    credentials: SEALED,
    reason: 'quota exceeded',
    attempts: 5,
    nextAttemptAt: '2026-11-21T00:00:00.000Z',
    errors: [{ at: '2026-11-03T00:00:00.000Z', cause: 'transfer', detail: 'quota exceeded' }],
  });
  store.upsert('carol@example.org', { state: 'captured', credentials: SEALED });
  store.upsert('dave@example.org', { state: 'unknown', imported: true });
  store.upsert('erin@example.org', { state: 'transferring', credentials: SEALED });
  store.upsert('nopw@example.org', { state: 'failed', reason: 'x' });
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
      listAccounts(store).map((a) => a.address),
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
      listAccounts(store, { state: ['failed', 'captured'] }).map((a) => a.address),
      ['bob@example.org', 'carol@example.org', 'nopw@example.org'],
    );
    assert.deepEqual(
      listAccounts(store, { imported: true }).map((a) => a.address),
      ['dave@example.org'],
    );
    assert.equal(listAccounts(store, { imported: false }).length, 5);
    assert.deepEqual(
      listAccounts(store, { match: 'CAR' }).map((a) => a.address),
      ['carol@example.org'],
    );
    const bob = listAccounts(store, { match: 'bob' })[0]!;
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
    const text = renderAccountList(listAccounts(store));
    assert.match(text, /^bob@example\.org\s+failed\s+yes\s+no\s+quota exceeded$/m);
    assert.match(text, /^6 account\(s\)$/m);
    assert.doesNotMatch(JSON.stringify(listAccounts(store)), /c2VjcmV0|credentials/);
  });

  it('shows one account; an unknown one is an operator error', async (t) => {
    const { store } = await fixture(t);
    const a = showAccount(store, 'ALICE@example.org');
    assert.equal(a.state, 'migrated');
    assert.equal(a.hasCredentials, true);
    assert.deepEqual(a.errors, []);
    assert.doesNotMatch(JSON.stringify(a), /c2VjcmV0|credentials/);
    assert.match(
      renderAccount(a),
      /^transfer\s+10 copied, 0 skipped, 0 failed of 10 \(1000 bytes\)$/m,
    );
    assert.throws(() => showAccount(store, 'zed@example.org'), isOp('ENOACCOUNT'));
  });
});

describe('accounts exclude / include', () => {
  it('excludes with a reason, also an address never seen, and includes back', async (t) => {
    const { store } = await fixture(t);
    const r = excludeAccount(store, 'carol@example.org', 'shared mailbox');
    assert.deepEqual([r.before, r.after, r.changed], ['captured', 'excluded', true]);
    assert.equal(store.get('carol@example.org')?.reason, 'shared mailbox');
    assert.equal(excludeAccount(store, 'carol@example.org').changed, false);

    const n = excludeAccount(store, 'New@Example.org');
    assert.deepEqual([n.address, n.before, n.after], ['new@example.org', undefined, 'excluded']);
    assert.equal(store.get('new@example.org')?.reason, 'excluded by the administrator');

    const back = includeAccount(store, 'carol@example.org');
    assert.deepEqual([back.before, back.after, back.changed], ['excluded', 'captured', true]);
    assert.equal(store.get('carol@example.org')?.reason, undefined);
    assert.equal(includeAccount(store, 'new@example.org').after, 'unknown');
    assert.equal(includeAccount(store, 'alice@example.org').changed, false);
  });

  it('refuses to exclude a migrated account or one being moved', async (t) => {
    const { store } = await fixture(t);
    assert.throws(() => excludeAccount(store, 'alice@example.org'), isOp('EACCOUNTSTATE'));
    assert.throws(() => excludeAccount(store, 'erin@example.org'), isOp('EACCOUNTSTATE'));
    assert.equal(store.get('alice@example.org')?.state, 'migrated');
  });
});

describe('accounts retry', () => {
  it('sets a failed account back to captured, keeps the password, clears the back-off', async (t) => {
    const { store } = await fixture(t);
    const r = retryAccount(store, 'bob@example.org');
    assert.deepEqual([r.before, r.after, r.changed], ['failed', 'captured', true]);
    const bob = store.get('bob@example.org')!;
    assert.deepEqual(bob.credentials, SEALED);
    assert.equal(bob.nextAttemptAt, undefined);
    assert.equal(bob.attempts, 0);
    assert.equal(bob.reason, undefined);
    assert.equal(bob.errors.length, 1, 'the history stays');
    assert.equal(retryAccount(store, 'bob@example.org').changed, false);
  });

  it('refuses other states and a failed account without a password', async (t) => {
    const { store } = await fixture(t);
    assert.throws(() => retryAccount(store, 'alice@example.org'), isOp('EACCOUNTSTATE'));
    assert.throws(() => retryAccount(store, 'nopw@example.org'), isOp('ENOCREDENTIALS'));
    assert.throws(() => retryAccount(store, 'zed@example.org'), isOp('ENOACCOUNT'));
    assert.equal(store.get('nopw@example.org')?.state, 'failed');
  });
});

describe('accounts forget-credentials', () => {
  it('removes the password; captured and failed go back to unknown, migrated stays', async (t) => {
    const { store } = await fixture(t);
    const c = forgetCredentials(store, 'carol@example.org');
    assert.deepEqual([c.before, c.after, c.changed], ['captured', 'unknown', true]);
    assert.equal(store.get('carol@example.org')?.credentials, undefined);
    assert.equal(forgetCredentials(store, 'bob@example.org').after, 'unknown');
    const a = forgetCredentials(store, 'alice@example.org');
    assert.deepEqual([a.after, a.changed], ['migrated', true]);
    assert.equal(store.get('alice@example.org')?.credentials, undefined);
    assert.equal(forgetCredentials(store, 'alice@example.org').changed, false);
    assert.throws(() => forgetCredentials(store, 'erin@example.org'), isOp('EACCOUNTSTATE'));
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
    const r = importAccounts(store, 'alice@example.org\ndave@example.org\nfrank@example.org\n');
    assert.deepEqual(r, { added: 1, marked: 1, unchanged: 1, duplicates: 0, total: 3 });
    assert.equal(store.get('alice@example.org')?.state, 'migrated');
    assert.equal(store.get('alice@example.org')?.imported, true);
    assert.deepEqual(
      [store.get('frank@example.org')?.state, store.get('frank@example.org')?.imported],
      ['unknown', true],
    );
    const before = store.count();
    assert.throws(
      () => importAccounts(store, 'gina@example.org\nbad line\n', 'all.txt'),
      (err: unknown) =>
        isOp('EIMPORT')(err) &&
        /all\.txt has 1 bad line.*line 2 "bad line"/.test((err as Error).message),
    );
    assert.equal(store.count(), before);
    assert.equal(store.get('gina@example.org'), undefined);
  });
});

describe('opening the store', () => {
  it('reads while another writer holds the lock; a change fails with the lock message and the hint', async (t) => {
    const { path, store } = await fixture(t);
    await store.flush();
    const list = await withReadOnlyStore(path, (s) => listAccounts(s));
    assert.equal(list.length, 6);
    await assert.rejects(
      withWritableStore(path, (s) => excludeAccount(s, 'carol@example.org')),
      (err: unknown) =>
        isOp('ESTORELOCKED')(err) &&
        /owns .*state\.json/.test((err as Error).message) &&
        /go through its control socket/.test((err as OperatorError).hint) &&
        /starting or stopping \(try again in a moment\)/.test((err as OperatorError).hint),
    );
    assert.equal(store.get('carol@example.org')?.state, 'captured');
  });

  it('a change is saved and the lock released', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'ap-accounts-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'state.json');
    await withWritableStore(path, (s) => excludeAccount(s, 'x@example.org', 'test'));
    const again = await openAccountStore(path);
    assert.equal(again.get('x@example.org')?.state, 'excluded');
    await again.close();
  });
});
