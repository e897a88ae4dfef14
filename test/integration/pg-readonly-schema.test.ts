/**
 * Read-only commands on a PostgreSQL state never change its schema: against a real
 * PostgreSQL, `accounts list` and `report progress` on an empty database say to start
 * `autoport proxy` once and create nothing; on an older schema they say so and leave it
 * older; on a newer one they say to upgrade AutoPort. A writing open creates the schema,
 * after which the read-only commands work.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { openStateStore } from '../../src/core/state/open-store.js';
import { SCHEMA_VERSION, SchemaVersionError } from '../../src/core/state/pg-schema.js';
import { ensureBuilt, runCli, writeOfflineConfig } from '../support/cli.js';
import { startPostgres, type PostgresInstance } from '../support/postgres.js';

const PASSWORD_ENV = 'AUTOPORT_TEST_STATE_PASSWORD';

describe('read-only opens of a PostgreSQL state', { timeout: 180_000 }, () => {
  let db: PostgresInstance;
  let dir: string;
  let state: string;
  let password: string | undefined;
  const env: NodeJS.ProcessEnv = {};

  const sql = async <T extends pg.QueryResultRow>(q: string): Promise<T[]> => {
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      return (await c.query<T>(q)).rows;
    } finally {
      await c.end();
    }
  };
  const schemaTable = async () =>
    (await sql<{ t: string | null }>("SELECT to_regclass('autoport_schema')::text AS t"))[0]!.t;
  const versions = async () =>
    (await sql<{ version: number }>('SELECT version FROM autoport_schema ORDER BY 1')).map(
      (r) => r.version,
    );
  const settings = () => ({
    state,
    stateDir: dir,
    ...(password !== undefined ? { statePassword: password } : {}),
  });

  before(async () => {
    ensureBuilt();
    db = await startPostgres();
    dir = mkdtempSync(join(tmpdir(), 'ap-pg-ro-'));
    const u = new URL(db.url);
    if (u.password !== '') password = env[PASSWORD_ENV] = decodeURIComponent(u.password);
    u.password = '';
    state = u.toString();
    const file = writeOfflineConfig(
      dir,
      password !== undefined ? [`statePasswordEnv: ${PASSWORD_ENV}`] : [],
      state,
    );
    env.AUTOPORT_CONFIG = file;
  });
  after(async () => {
    await db?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('an empty database: refused with what to do, and nothing is created', async () => {
    for (const args of [
      ['accounts', 'list', '--json'],
      ['report', 'progress', '--json'],
    ]) {
      const r = await runCli(args, { env });
      assert.notEqual(r.code, 0, `${args.join(' ')}: ${r.stdout}`);
      assert.match(r.stderr, /no AutoPort schema yet/, r.stderr);
      assert.match(r.stderr, /start `autoport proxy`.* once to create it/, r.stderr);
    }
    await assert.rejects(openStateStore(settings(), { readOnly: true }), (err) => {
      assert.ok(err instanceof SchemaVersionError);
      assert.equal(err.have, 0);
      return true;
    });
    assert.equal(await schemaTable(), null, 'no table was created');
  });

  it('a writing open creates the schema; read-only commands then work', async () => {
    const store = await openStateStore(settings());
    await store.upsert('alice@example.org', { state: 'captured' });
    await store.close();
    assert.deepEqual(
      await versions(),
      Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1),
    );
    const r = await runCli(['accounts', 'list', '--json'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      (JSON.parse(r.stdout) as Array<{ address: string }>).map((a) => a.address),
      ['alice@example.org'],
    );
  });

  it('an older schema: refused, left as it was', async () => {
    await sql(`DELETE FROM autoport_schema WHERE version = ${SCHEMA_VERSION}`);
    const r = await runCli(['accounts', 'show', 'alice@example.org'], { env });
    assert.notEqual(r.code, 0, r.stdout);
    assert.match(
      r.stderr,
      new RegExp(
        `schema version ${SCHEMA_VERSION - 1}, older than this AutoPort's ${SCHEMA_VERSION}`,
      ),
    );
    assert.match(r.stderr, /once to upgrade it/);
    assert.equal((await versions()).length, SCHEMA_VERSION - 1, 'not upgraded');
    await sql(`INSERT INTO autoport_schema (version) VALUES (${SCHEMA_VERSION})`);
  });

  it('a newer schema: upgrade AutoPort, for reading and writing opens alike', async () => {
    await sql(`INSERT INTO autoport_schema (version) VALUES (${SCHEMA_VERSION + 1})`);
    const r = await runCli(['report', 'progress'], { env });
    assert.notEqual(r.code, 0, r.stdout);
    assert.match(r.stderr, /newer than this AutoPort's \d+: upgrade AutoPort/);
    await assert.rejects(openStateStore(settings()), /upgrade AutoPort/);
  });
});
