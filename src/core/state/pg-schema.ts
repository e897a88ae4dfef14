/**
 * The PostgreSQL store's schema, created and upgraded by AutoPort itself: each migration
 * runs once, in order, in one transaction with its row in autoport_schema, under an
 * advisory lock so two nodes starting together do not race.
 *
 * A record is kept whole as JSON text (json, not jsonb: its fields, sealed credentials
 * included, come back byte for byte as written); the columns beside it are what the worker pool, the metrics and the reports ask, each with its index.
 */
import type pg from 'pg';
import { StateError } from './errors.js';

const MIGRATION_LOCK = 0x6175_7470; // "autp": one advisory lock id for schema changes

export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE autoport_accounts (
     address text PRIMARY KEY,
     state text NOT NULL,
     has_credentials boolean NOT NULL,
     attempts integer NOT NULL DEFAULT 0,
     next_attempt_at timestamptz,
     moving boolean NOT NULL DEFAULT false,
     updated_at text NOT NULL,
     node text,
     record json NOT NULL
   );
   CREATE INDEX autoport_accounts_state ON autoport_accounts (state, updated_at);
   CREATE INDEX autoport_accounts_due ON autoport_accounts (state, updated_at)
     WHERE has_credentials AND state IN ('captured', 'failed');
   CREATE INDEX autoport_accounts_moving ON autoport_accounts (address) WHERE moving;`,
  // several nodes (pg-cluster.ts): claims, node heartbeats; pending late-mail sweeps indexed
  `ALTER TABLE autoport_accounts ADD COLUMN claim_node text, ADD COLUMN next_sweep_at timestamptz;
   UPDATE autoport_accounts SET next_sweep_at = (record->'sweepAt'->>0)::timestamptz
     WHERE state = 'migrated' AND json_typeof(record->'sweepAt') = 'array'
       AND json_array_length(record->'sweepAt') > 0;
   CREATE INDEX autoport_accounts_sweeps ON autoport_accounts (next_sweep_at)
     WHERE next_sweep_at IS NOT NULL;
   CREATE INDEX autoport_accounts_orphans ON autoport_accounts (address)
     WHERE moving OR state = 'transferring';
   CREATE TABLE autoport_nodes (
     node text PRIMARY KEY,
     name text NOT NULL,
     started_at timestamptz NOT NULL DEFAULT now(),
     seen_at timestamptz NOT NULL DEFAULT now(),
     view json
   );`,
  // side data every node must see (side-data.ts): the handed-over marker, POP3 UIDL maps
  `CREATE TABLE autoport_side (
     address text NOT NULL,
     key text NOT NULL,
     data json NOT NULL,
     written timestamptz NOT NULL DEFAULT clock_timestamp(),
     PRIMARY KEY (address, key)
   );`,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** The database's schema is not the one this AutoPort reads (missing, older or newer). */
export class SchemaVersionError extends StateError {
  constructor(
    readonly have: number,
    readonly want: number,
  ) {
    super(
      'ESCHEMAVERSION',
      have > want
        ? `the database holds schema version ${have}, newer than this AutoPort's ${want}: upgrade AutoPort`
        : `${have === 0 ? 'the database has no AutoPort schema yet' : `the database holds schema version ${have}, older than this AutoPort's ${want}`}; ` +
            'a read-only command does not change it: start `autoport proxy` (or run a command ' +
            'that changes accounts, e.g. `autoport accounts import`) once to ' +
            (have === 0 ? 'create it' : 'upgrade it'),
    );
  }
}

async function schemaVersion(client: pg.PoolClient): Promise<number> {
  // two queries: a statement naming a missing table fails when parsed, whatever its CASE
  const t = await client.query<{ t: string | null }>(
    "SELECT to_regclass('autoport_schema')::text AS t",
  );
  if (!t.rows[0]?.t) return 0;
  const { rows } = await client.query<{ v: number | null }>(
    'SELECT max(version) AS v FROM autoport_schema',
  );
  return rows[0]?.v ?? 0;
}

/**
 * For read-only opens (reports, `accounts list`): the schema must be exactly this
 * AutoPort's, and nothing is created or changed (no table, no advisory lock).
 */
export async function checkSchema(client: pg.PoolClient): Promise<void> {
  const have = await schemaVersion(client);
  if (have !== SCHEMA_VERSION) throw new SchemaVersionError(have, SCHEMA_VERSION);
}

/** Bring the schema to SCHEMA_VERSION; refuses a database from a newer AutoPort. */
export async function migrate(client: pg.PoolClient): Promise<void> {
  await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
  try {
    await client.query(
      'CREATE TABLE IF NOT EXISTS autoport_schema (version integer PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())',
    );
    const have = await schemaVersion(client);
    if (have > SCHEMA_VERSION) throw new SchemaVersionError(have, SCHEMA_VERSION);
    for (let v = have + 1; v <= SCHEMA_VERSION; v++) {
      await client.query('BEGIN');
      try {
        await client.query(MIGRATIONS[v - 1]!);
        await client.query('INSERT INTO autoport_schema (version) VALUES ($1)', [v]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK');
        throw err;
      }
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]);
  }
}
