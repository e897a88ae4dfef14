/**
 * The account store in PostgreSQL, for a million accounts and several gateway nodes.
 *
 * Every change is committed before its promise resolves, so it is durable when the promise
 * is (flush() has nothing left to do). update() writes a row only if it is still the
 * version its function saw, and runs the function again on the newer one otherwise: two
 * nodes changing one account never lose a change; concurrent changes share a batch and
 * its commit (pg-batch.ts). No lock is held on the store as a whole: several gateway nodes
 * share it (pg-cluster.ts), and each names itself on the rows it writes.
 *
 * Records are stored whole as JSON, credentials sealed as they are (crypto.ts); the
 * columns beside (pg-schema.ts) serve the worker pool's due(), counts() and list filters
 * from indexes.
 */
import { hostname } from 'node:os';
import pg from 'pg';
import { StoreClosedError, StoreReadOnlyError, StoreUnavailableError } from './errors.js';
import { makeNodeId } from './node-id.js';
import { UpdateBatcher } from './pg-batch.js';
import { COLUMNS, ROW_TYPES, rowValues } from './pg-rows.js';
import { PgCluster } from './pg-cluster.js';
import { checkSchema, migrate, SchemaVersionError } from './pg-schema.js';
import { PgSideData } from './pg-side-data.js';
import { deepFreeze, isAccountState, normalizeAddress, tryNormalize } from './records.js';
import {
  ACCOUNT_STATES,
  type AccountCounts,
  type AccountFilter,
  type AccountPatch,
  type AccountRecord,
  type AccountState,
  type ClusterTiming,
  DEFAULT_CLUSTER_TIMING,
  type DueQuery,
  type SideData,
  type StateStore,
  type SweepQuery,
} from './types.js';

export interface PgStoreOptions {
  /** this node's name among the cluster's (config nodeName; default the host name) */
  nodeName?: string;
  clusterTiming?: ClusterTiming;
  /** the folder for side files (copy checkpoints), which stay on disk */
  sideDir?: string;
  /**
   * Read a store the gateway nodes are using (reports, `accounts list`), like the JSON
   * store's readOnly: the schema is only checked to be this AutoPort's (SchemaVersionError
   * otherwise), never created or upgraded under a running gateway; every change, side data
   * included, throws StoreReadOnlyError; the store is no node of the cluster (no heartbeat,
   * no claims). Without it the schema is created or upgraded.
   */
  readOnly?: boolean;
  /** connections in the pool (default 10) */
  poolSize?: number;
  now?: () => Date;
}

export interface PgStore extends StateStore {
  readonly cluster: PgCluster;
}

/** how long ping() and a new connection may take before the database counts as down */
const CONNECT_TIMEOUT_MS = 5_000;
const PING_TIMEOUT_MS = 2_000;

/** The URL without its password, for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgresql://(unparsable URL)';
  }
}

export async function openPgStore(url: string, options: PgStoreOptions = {}): Promise<PgStore> {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.poolSize ?? 10,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
  });
  pool.on('error', () => undefined); // an idle connection that dies is replaced on next use
  const location = redactUrl(url);
  try {
    const client = await pool.connect();
    try {
      await (options.readOnly ? checkSchema(client) : migrate(client));
    } finally {
      client.release();
    }
  } catch (err) {
    await pool.end().catch(() => undefined);
    if (err instanceof SchemaVersionError) throw err;
    throw new StoreUnavailableError(location, err as Error);
  }
  const name = options.nodeName ?? hostname();
  const cluster = new PgCluster(
    makeNodeId(name),
    name,
    pool,
    url,
    options.clusterTiming ?? DEFAULT_CLUSTER_TIMING,
    options.readOnly ? location : undefined,
  );
  return new PgStoreImpl(location, pool, cluster, options);
}

class PgStoreImpl implements PgStore {
  readonly sideDir: string | undefined;
  readonly side: SideData = new PgSideData(
    (sql, args) => this.query(sql, args),
    () => this.assertOpen(),
  );
  private readonly now: () => Date;
  private readonly batcher: UpdateBatcher;
  private readonly readOnly: boolean;
  private closed = false;

  constructor(
    readonly location: string,
    private readonly pool: pg.Pool,
    readonly cluster: PgCluster,
    options: PgStoreOptions,
  ) {
    this.sideDir = options.sideDir;
    this.readOnly = options.readOnly ?? false;
    this.now = options.now ?? (() => new Date());
    this.batcher = new UpdateBatcher({
      pool,
      node: cluster.node,
      now: this.now,
      unavailable: (err) => new StoreUnavailableError(location, err),
    });
  }

  async get(address: string): Promise<AccountRecord | undefined> {
    const key = tryNormalize(address);
    if (key === undefined) return undefined;
    const { rows } = await this.query('SELECT record FROM autoport_accounts WHERE address = $1', [
      key,
    ]);
    return rows[0] ? toRecord(rows[0].record) : undefined;
  }

  async list(filter: AccountFilter = {}): Promise<AccountRecord[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.state !== undefined) {
      args.push([filter.state].flat());
      where.push(`state = ANY($${args.length})`);
    }
    if (filter.moving) where.push('moving');
    if (filter.after !== undefined) {
      args.push(filter.after);
      where.push(`address > $${args.length}`);
    }
    let sql = 'SELECT record FROM autoport_accounts';
    if (where.length) sql += ` WHERE ${where.join(' AND ')}`;
    sql += ' ORDER BY address';
    if (filter.limit !== undefined) {
      args.push(filter.limit);
      sql += ` LIMIT $${args.length}`;
    }
    const { rows } = await this.query(sql, args);
    return rows.map((r) => toRecord(r.record));
  }

  async due(q: DueQuery): Promise<AccountRecord[]> {
    const captured = await this.query(
      `SELECT record FROM autoport_accounts WHERE has_credentials AND state = 'captured'
       ORDER BY updated_at LIMIT $1`,
      [q.limit],
    );
    const left = q.limit - captured.rows.length;
    if (left <= 0) return captured.rows.map((r) => toRecord(r.record));
    const failed = await this.query(
      `SELECT record FROM autoport_accounts WHERE has_credentials AND state = 'failed'
         AND attempts < $1 AND (next_attempt_at IS NULL OR next_attempt_at <= $2)
       ORDER BY updated_at LIMIT $3`,
      [q.maxAttempts, q.now, left],
    );
    return [...captured.rows, ...failed.rows].map((r) => toRecord(r.record));
  }

  async dueSweeps(q: SweepQuery): Promise<AccountRecord[]> {
    const { rows } = await this.query(
      `SELECT record FROM autoport_accounts WHERE next_sweep_at <= $1
       ORDER BY next_sweep_at LIMIT $2`,
      [q.now, q.limit],
    );
    return rows.map((r) => toRecord(r.record));
  }

  /** One round trip, bounded: a database that hangs is as down as one that refuses. */
  async ping(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new StoreUnavailableError(
              this.location,
              new Error(`no answer within ${PING_TIMEOUT_MS} ms`),
            ),
          ),
        PING_TIMEOUT_MS,
      );
    });
    try {
      await Promise.race([this.query('SELECT 1'), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Two counts, each an index-only scan: by state on (state, updated_at), the queue on the
   * partial due index. One GROUP BY with count(*) FILTER (WHERE has_credentials) needs the
   * heap's has_credentials, a scan of every row's record (1.1 s and 800 MB read at a million
   * accounts, against 0.4 s for these two).
   */
  async counts(): Promise<AccountCounts> {
    const [states, due] = await Promise.all([
      this.query('SELECT state, count(*)::int AS n FROM autoport_accounts GROUP BY state'),
      this.query(
        `SELECT count(*)::int AS n FROM autoport_accounts
         WHERE has_credentials AND state = 'captured'`,
      ),
    ]);
    const byState = Object.fromEntries(ACCOUNT_STATES.map((s) => [s, 0])) as Record<
      AccountState,
      number
    >;
    for (const r of states.rows as Array<{ state: AccountState; n: number }>)
      if (r.state in byState) byState[r.state] = r.n;
    return { byState, queue: (due.rows[0] as { n: number }).n };
  }

  async count(): Promise<number> {
    const { rows } = await this.query('SELECT count(*)::int AS n FROM autoport_accounts');
    return (rows[0] as { n: number }).n;
  }

  upsert(address: string, patch: AccountPatch): Promise<AccountRecord> {
    const copy = structuredClone(patch);
    return this.update(address, (r) => void Object.assign(r, copy, { address: r.address }));
  }

  /**
   * What is stored is fn's work on the record as it was when stored (fn runs again when
   * another writer got in between); changes that come in together share one batch and one
   * commit (pg-batch.ts).
   */
  async update(address: string, fn: (rec: AccountRecord) => void): Promise<AccountRecord> {
    this.assertOpen();
    return toRecord(await this.batcher.update(normalizeAddress(address), fn));
  }

  /** One INSERT of every row (arrays unnested): a state import is not a row at a time. */
  async insertMany(records: readonly AccountRecord[]): Promise<void> {
    this.assertOpen();
    if (records.length === 0) return;
    const rows = records.map((r) => {
      if (normalizeAddress(r.address) !== r.address || !isAccountState(r.state))
        throw new TypeError(`${r.address}: not a normalised address, or an unknown state`);
      return rowValues(r, this.cluster.node);
    });
    const arrays = ROW_TYPES.map((_, i) => rows.map((row) => row[i]));
    const casts = ROW_TYPES.map((t, i) => `$${i + 1}::${t}[]`);
    await this.query(
      `INSERT INTO autoport_accounts (${COLUMNS}) SELECT * FROM unnest(${casts.join(', ')})`,
      arrays,
    );
  }

  async remove(address: string): Promise<boolean> {
    this.assertOpen();
    const key = tryNormalize(address);
    if (key === undefined) return false;
    const r = await this.query('DELETE FROM autoport_accounts WHERE address = $1', [key]);
    return (r.rowCount ?? 0) > 0;
  }

  /** Every change is committed before its call resolves: nothing is left to write. */
  async flush(): Promise<void> {}

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.cluster.leave();
    await this.pool.end();
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreClosedError(this.location);
    if (this.readOnly) throw new StoreReadOnlyError(this.location);
  }

  private async query(sql: string, args: unknown[] = []): Promise<pg.QueryResult> {
    if (this.closed) throw new StoreClosedError(this.location);
    try {
      return await this.pool.query(sql, args);
    } catch (err) {
      throw new StoreUnavailableError(this.location, err as Error);
    }
  }
}

/** The record as written (fields set to undefined were dropped by JSON.stringify). */
function toRecord(value: unknown): AccountRecord {
  return deepFreeze(value as AccountRecord);
}
