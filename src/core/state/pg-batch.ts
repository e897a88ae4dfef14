/**
 * Group commit for the PostgreSQL store's update(): what a login storm's captures wait for
 * is the commit (a WAL flush each), not the round trips, so changes that arrive while
 * MAX_IN_FLIGHT batches commit wait and go together in the next one, one transaction and
 * one flush for all (as the JSON store's journal does). A change alone goes at once.
 *
 * A batch locks its rows (SELECT ... FOR UPDATE, in address order so two nodes' batches
 * cannot deadlock), runs each caller's function on the current record in arrival order
 * (two changes of one account see each other), writes every row in one statement, sends
 * the NOTIFYs and commits. A function that throws fails its own caller only; a database
 * failure fails the whole batch.
 */
import type pg from 'pg';
import { changePayload, CHANGES_CHANNEL } from './pg-cluster.js';
import { applyUpdate, newRecord, settleRecord } from './records.js';
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

/** at most this many changes in one transaction */
const MAX_BATCH = 200;
/**
 * batches committing at once: enough to keep the database busy while one waits for its
 * flush, few enough to leave the pool's other connections to reads
 */
const MAX_IN_FLIGHT = 4;

/** The row of a record (COLUMNS, of ROW_TYPES): the columns beside the record serve indexes (pg-schema.ts). */
export function rowValues(rec: AccountRecord, node: string): unknown[] {
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
    JSON.stringify(rec),
  ];
}

interface Change {
  key: string;
  fn: (rec: AccountRecord) => void;
  resolve: (rec: AccountRecord) => void;
  reject: (err: unknown) => void;
}

export interface BatchContext {
  pool: pg.Pool;
  node: string;
  now: () => Date;
  /** a database failure as the store reports it; a function's own error passes as it is */
  unavailable: (err: Error) => Error;
}

export class UpdateBatcher {
  private queue: Change[] = [];
  private inFlight = 0;

  constructor(private readonly ctx: BatchContext) {}

  update(key: string, fn: (rec: AccountRecord) => void): Promise<AccountRecord> {
    return new Promise((resolve, reject) => {
      this.queue.push({ key, fn, resolve, reject });
      if (this.inFlight < MAX_IN_FLIGHT) void this.drain();
    });
  }

  /** One committer: batch after batch while changes wait. */
  private async drain(): Promise<void> {
    this.inFlight++;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, MAX_BATCH);
      await this.commit(batch).catch((err: Error) => {
        const e = this.ctx.unavailable(err);
        for (const c of batch) c.reject(e);
      });
    }
    this.inFlight--;
  }

  private async commit(batch: Change[]): Promise<void> {
    const client = await this.ctx.pool.connect();
    try {
      await client.query('BEGIN');
      const keys = [...new Set(batch.map((c) => c.key))].sort();
      const { rows } = await client.query(
        'SELECT record FROM autoport_accounts WHERE address = ANY($1) ORDER BY address FOR UPDATE',
        [keys],
      );
      const before = new Map<string, AccountRecord>(
        rows.map((r) => [(r.record as AccountRecord).address, r.record as AccountRecord]),
      );
      const { after, results } = this.apply(batch, before);
      await this.write(client, before, after);
      await client.query('COMMIT');
      for (const [c, r] of results) {
        if ('ok' in r) c.resolve(r.ok);
        else c.reject(r.err);
      }
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  /** Each function on the record as the changes before it in the batch left it. */
  private apply(batch: Change[], before: Map<string, AccountRecord>) {
    const after = new Map<string, AccountRecord>();
    const results = new Map<Change, { ok: AccountRecord } | { err: unknown }>();
    const nowIso = this.ctx.now().toISOString();
    for (const c of batch) {
      const current = after.get(c.key) ?? before.get(c.key);
      const draft = current ? structuredClone(current) : newRecord(c.key, nowIso);
      try {
        applyUpdate(c.key, draft, c.fn);
        const next = settleRecord(current, draft, nowIso);
        after.set(c.key, next);
        results.set(c, { ok: next });
      } catch (err) {
        results.set(c, { err });
      }
    }
    return { after, results };
  }

  private async write(
    client: pg.PoolClient,
    before: Map<string, AccountRecord>,
    after: Map<string, AccountRecord>,
  ): Promise<void> {
    if (after.size === 0) return;
    // in address order, like the locks: two nodes inserting the same new accounts take turns
    const sorted = [...after.values()].sort((a, b) => (a.address < b.address ? -1 : 1));
    const rows = sorted.map((r) => rowValues(r, this.ctx.node));
    const casts = ROW_TYPES.map((t, i) => `$${i + 1}::${t}[]`);
    await client.query(
      `INSERT INTO autoport_accounts (${COLUMNS}) SELECT * FROM unnest(${casts.join(', ')})
       ON CONFLICT (address) DO UPDATE SET state = EXCLUDED.state,
         has_credentials = EXCLUDED.has_credentials, attempts = EXCLUDED.attempts,
         next_attempt_at = EXCLUDED.next_attempt_at, moving = EXCLUDED.moving,
         updated_at = EXCLUDED.updated_at, node = EXCLUDED.node,
         next_sweep_at = EXCLUDED.next_sweep_at, record = EXCLUDED.record`,
      ROW_TYPES.map((_, i) => rows.map((row) => row[i])),
    );
    const notices = [...after.values()]
      .map((next) => this.notice(before.get(next.address), next))
      .filter((p): p is string => p !== undefined);
    if (notices.length > 0)
      await client.query('SELECT pg_notify($1, p) FROM unnest($2::text[]) p', [
        CHANGES_CHANNEL,
        notices,
      ]);
  }

  /**
   * The other nodes hear of a new state or phase when it commits (pg-cluster.ts); a new
   * record still unknown is no news (absent reads as unknown).
   */
  private notice(old: AccountRecord | undefined, next: AccountRecord): string | undefined {
    const created = old === undefined && next.state === 'unknown' && !next.transferPhase;
    if (created || (old?.state === next.state && old?.transferPhase === next.transferPhase))
      return undefined;
    return changePayload({
      address: next.address,
      state: next.state,
      phase: next.transferPhase,
      node: this.ctx.node,
    });
  }
}
