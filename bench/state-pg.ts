/**
 * The PostgreSQL side of bench:state: a server of its own (the test harness's, from
 * Debian's postgresql package, fsync on; or AUTOPORT_TEST_PG_URL), the schema made by
 * AutoPort itself (openPgStore), and the accounts filled in fast: the same records as the
 * JSON store's (state-records.ts: copies of forty templates), made by the server itself
 * (INSERT ... SELECT from generate_series), then VACUUM ANALYZE so
 * the planner knows the table's size as a site's long-running database would.
 */
import pg from 'pg';
import type { Keyring } from '../src/core/state/crypto.js';
import { openPgStore } from '../src/core/state/pg-store.js';
import { COLUMNS, ROW_TYPES, rowValues } from '../src/core/state/pg-rows.js';
import { startPostgres, type PostgresInstance } from '../test/support/postgres.js';
import type { AccountRecord } from '../src/core/state/types.js';
import {
  FROM_TEMPLATE_SQL,
  fromTemplate,
  makeRecord,
  makeTemplates,
  TEMPLATES,
} from './state-records.js';

/** accounts per INSERT ... SELECT */
const STEP = 100_000;

/** The server and an empty database with AutoPort's schema. */
export async function startBenchPostgres(): Promise<PostgresInstance> {
  const db = await startPostgres();
  try {
    const store = await openPgStore(db.url, { nodeName: 'bench' });
    await store.close();
  } catch (err) {
    await db.stop();
    throw err;
  }
  return db;
}

/** The row the store itself would write (pg-update.ts), named as the fill's. */
const columnsOf = (r: AccountRecord): unknown[] => rowValues(r, 'bench-fill');

/** Rows into `table`, one array per column (unnest): one statement for many rows. */
async function insertRows(c: pg.ClientBase, table: string, rows: unknown[][]): Promise<void> {
  const cols: unknown[][] = ROW_TYPES.map((_, k) => rows.map((row) => row[k]));
  await c.query(
    `INSERT INTO ${table} (${COLUMNS})
     SELECT * FROM unnest(${ROW_TYPES.map((t, i) => `$${i + 1}::${t}[]`).join(', ')})`,
    cols,
  );
}

/** Copies of the templates, made in the server: account g is template g % TEMPLATES. */
const FROM_TEMPLATES = `INSERT INTO autoport_accounts (${COLUMNS})
  SELECT 'user' || g || '@dept' || (g % 40) || '.example.org', t.state, t.has_credentials,
    t.attempts, t.next_attempt_at, t.moving, t.updated_at, t.node, t.next_sweep_at,
    replace(t.record::text, 'user' || t.n || '@', 'user' || g || '@')::json
  FROM generate_series($1::integer, $2::integer) g
  JOIN bench_templates t ON t.r = g % ${TEMPLATES}
  WHERE ${FROM_TEMPLATE_SQL}`;

/**
 * Accounts [from, to) into the table: the templates' copies made by the server, a hundred
 * thousand per statement, and the few accounts that are no template's copy sent as rows.
 */
export async function fillAccounts(
  url: string,
  from: number,
  to: number,
  keyring: Keyring,
): Promise<void> {
  // the fill is not what is measured: its commits need not wait for the disk
  const c = new pg.Client({ connectionString: url, options: '-c synchronous_commit=off' });
  await c.connect();
  try {
    await c.query(
      'CREATE TEMP TABLE bench_templates (LIKE autoport_accounts, r integer, n integer)',
    );
    const templates = makeTemplates(keyring);
    await insertRows(
      c,
      'bench_templates',
      templates.map((t) => columnsOf(t.record)),
    );
    await c.query(
      `UPDATE bench_templates SET n = substring(address from 'user([0-9]+)@')::integer,
         r = substring(address from 'user([0-9]+)@')::integer % ${TEMPLATES}`,
    );
    for (let start = from; start < to; start += STEP)
      await c.query(FROM_TEMPLATES, [start, Math.min(to, start + STEP) - 1]);
    const others: unknown[][] = [];
    for (let i = from; i < to; i++)
      if (!fromTemplate(i)) others.push(columnsOf(makeRecord(i, keyring)));
    if (others.length) await insertRows(c, 'autoport_accounts', others);
  } finally {
    await c.end();
  }
}

/**
 * VACUUM ANALYZE and a CHECKPOINT, and the table's size on disk with its indexes (MB): the
 * database as a site's that has run a while, its planner knowing the table's size and its
 * WAL files recycled rather than made afresh (making one stalls every commit for tens of
 * milliseconds; a checkpoint also means a page's first change afterwards logs the page).
 */
export async function settleTable(url: string): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query('VACUUM ANALYZE autoport_accounts');
    await c.query('CHECKPOINT');
    const { rows } = await c.query<{ b: string }>(
      "SELECT pg_total_relation_size('autoport_accounts')::bigint AS b",
    );
    return Math.round(Number(rows[0]!.b) / 1048576);
  } finally {
    await c.end();
  }
}

export async function serverVersion(url: string): Promise<string> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const { rows } = await c.query<{ v: string }>("SELECT current_setting('server_version') AS v");
    return `PostgreSQL ${rows[0]!.v}`;
  } finally {
    await c.end();
  }
}
