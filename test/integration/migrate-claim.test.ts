/**
 * `autoport migrate` next to gateway nodes on one PostgreSQL: it moves an account only
 * while it holds the account's claim, so it never runs a second move of an account a
 * node is moving; once the node lets go, the same command goes ahead.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseConfigText } from '../../src/core/config/index.js';
import { OperatorError } from '../../src/core/errors.js';
import { generateKeyFile, loadKeyring, seal } from '../../src/core/state/crypto.js';
import { openPgStore, type PgStore } from '../../src/core/state/pg-store.js';
import { runMigrate } from '../../src/core/transfer/run-migrate.js';
import { freePort } from '../support/ports.js';
import { startPostgres, type PostgresInstance } from '../support/postgres.js';

describe('autoport migrate claims what it moves', { timeout: 60_000 }, () => {
  let db: PostgresInstance;
  let dir: string;
  let node: PgStore;
  const address = 'claimed@example.org';

  before(async () => {
    db = await startPostgres();
    dir = mkdtempSync(join(tmpdir(), 'ap-migrate-claim-'));
    await generateKeyFile(join(dir, 'autoport.key'));
    node = await openPgStore(db.url, { nodeName: 'gw-1' });
    await node.cluster.join();
    const keyring = loadKeyring(join(dir, 'autoport.key'));
    await node.upsert(address, { state: 'captured', credentials: seal(keyring, 'pw', address) });
  });
  after(async () => {
    await node?.close();
    await db?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses while a node holds the account, goes ahead once it is released', async () => {
    // nothing listens there: a move that goes ahead fails to connect, not to claim
    const dead = await freePort();
    const config = parseConfigText(
      [
        `source: { imap: 'imap://127.0.0.1:${dead}' }`,
        `destination: { imap: 'imap://127.0.0.1:${dead}', provision: { kind: none } }`,
        'domains: [example.org]',
        `state: ${db.url}`,
        `keyFile: ${join(dir, 'autoport.key')}`,
        `stateDir: ${dir}`,
        'timeouts: { connectMs: 1000 }',
      ].join('\n'),
      join(dir, 'autoport.yaml'),
      {},
    );
    const opts = { address, all: false, verify: 'written' as const, warn: () => undefined };
    assert.equal(await node.cluster.claim(address), true);
    const busy = await runMigrate(config, opts).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(busy instanceof OperatorError, String(busy));
    assert.equal(busy.code, 'EBUSY');
    assert.match(busy.message, /being moved or swept by a gateway node/);
    assert.equal((await node.get(address))?.state, 'captured', 'untouched');

    const all = await runMigrate(config, { ...opts, address: undefined, all: true });
    assert.equal(all.ok, false);
    assert.ok(all.kind === 'all' && all.result.failed.some((f) => /gateway node/.test(f.error)));

    await node.cluster.release(address);
    const tried = await runMigrate(config, opts).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.notEqual((tried as OperatorError | undefined)?.code, 'EBUSY', String(tried));
    // and it gave its claim back, whatever the outcome
    assert.equal(await node.cluster.claim(address), true);
  });
});
