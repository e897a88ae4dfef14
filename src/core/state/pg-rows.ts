/**
 * An account's row in autoport_accounts (pg-schema.ts): the record as JSON, and beside it
 * the columns the indexes serve, derived from the record on every write. The statements
 * that read rows for a change and write them back, with the version check, are here too.
 */
import type { AccountRecord } from './types.js';

export const COLUMNS =
  'address, state, has_credentials, attempts, next_attempt_at, moving, updated_at, node, next_sweep_at, record';

export const ROW_TYPES = [
  'text',
  'text',
  'bool',
  'int',
  'timestamptz',
  'bool',
  'text',
  'text',
  'timestamptz',
  'json',
];

const NAMES = COLUMNS.split(', ');

/** The row of a record (COLUMNS, of ROW_TYPES), the record as JSON text. */
export function rowValues(rec: AccountRecord, node: string): unknown[] {
  return [...indexed(rec, node), JSON.stringify(rec)];
}

/** The columns beside the record, in COLUMNS' order. */
function indexed(rec: AccountRecord, node: string): unknown[] {
  return [
    rec.address,
    rec.state,
    rec.credentials !== undefined,
    rec.attempts ?? 0,
    rec.nextAttemptAt ?? null,
    rec.transferPhase !== undefined,
    rec.updatedAt,
    node,
    (rec.state === 'migrated' && rec.sweepAt?.[0]) || null,
  ];
}

/**
 * The row as one object of WRITE_ROWS' parameter: the record nested, not a string in a
 * string, so one JSON.stringify serves a whole batch. `expect` is the row's version as it
 * was read (null: there was no row); `notice` what to tell the other nodes, if anything.
 */
export function rowObject(
  rec: AccountRecord,
  node: string,
  expect: string | undefined,
  notice: string | undefined,
): Record<string, unknown> {
  const values = indexed(rec, node);
  const row: Record<string, unknown> = {};
  values.forEach((v, i) => (row[NAMES[i] as string] = v));
  row.record = rec;
  row.expect = expect ?? null;
  row.notice = notice ?? null;
  return row;
}

/** The rows of $1 (addresses) with their versions; FOR UPDATE appended when locking. */
export const READ_ROWS =
  'SELECT address AS a, xmin::text AS v, record::text AS r FROM autoport_accounts WHERE address = ANY($1) ORDER BY address';

const DEFINITION = NAMES.map((n, i) => `${n} ${ROW_TYPES[i]}`).join(', ');

/**
 * One statement for a batch: the rows of $1 (JSON, rowObject's) inserted or updated in
 * address order, each only where its version is still `expect` (a row another writer
 * changed, or made, since the read is left alone), and a NOTIFY on $2 for each row written
 * that has a notice. Returns the addresses written. Commits on its own outside a
 * transaction.
 */
export const WRITE_ROWS = `
  WITH x AS MATERIALIZED (
    SELECT * FROM json_to_recordset($1::json) AS x(${DEFINITION}, expect xid, notice text)),
  w AS (
    INSERT INTO autoport_accounts AS a (${COLUMNS}) SELECT ${COLUMNS} FROM x ORDER BY address
    ON CONFLICT (address) DO UPDATE SET state = EXCLUDED.state,
      has_credentials = EXCLUDED.has_credentials, attempts = EXCLUDED.attempts,
      next_attempt_at = EXCLUDED.next_attempt_at, moving = EXCLUDED.moving,
      updated_at = EXCLUDED.updated_at, node = EXCLUDED.node,
      next_sweep_at = EXCLUDED.next_sweep_at, record = EXCLUDED.record
    WHERE a.xmin = (SELECT expect FROM x WHERE x.address = EXCLUDED.address)
    RETURNING a.address)
  SELECT w.address, CASE WHEN x.notice IS NOT NULL THEN pg_notify($2, x.notice) END AS sent
    FROM w JOIN x USING (address)`;
