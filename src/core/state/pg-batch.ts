/**
 * Group commit for the PostgreSQL store's update(): changes that arrive while
 * MAX_IN_FLIGHT batches are under way wait and go together in the next one, one commit
 * (one WAL flush) for all, as the JSON store's journal does. A change alone goes at once.
 *
 * A batch is two round trips and no explicit transaction (a login storm is bound by the
 * CPU each round trip costs on both ends, not by the disk): it reads its rows with their
 * versions (xmin), runs each caller's function on the current record in arrival order (two
 * changes of one account see each other), then one statement writes every row whose
 * version is still the one read, in address order (two nodes' batches cannot deadlock),
 * and sends the NOTIFYs of the rows it wrote; it commits on its own. The changes of a row
 * another writer changed in between run again, their rows locked from the read to the
 * commit (commitLocked), so every change lands and each function's last run is what is
 * stored. A function that throws fails its own caller only; a database failure fails the
 * whole batch.
 */
import type pg from 'pg';
import { changePayload, CHANGES_CHANNEL } from './pg-cluster.js';
import { READ_ROWS, rowObject, WRITE_ROWS } from './pg-rows.js';
import { applyUpdate, newRecord, settleRecord } from './records.js';
import type { AccountRecord } from './types.js';

/** at most this many changes in one batch */
const MAX_BATCH = 200;
/**
 * batches under way at once: two keep both ends busy (one batch's rows are worked on here
 * while the other's are written); more only add round trips on a machine of few cores
 */
const MAX_IN_FLIGHT = 2;
/** a deadlock PostgreSQL broke (40P01) is retried this many times before it fails the batch */
const DEADLOCK_RETRIES = 3;

interface Change {
  key: string;
  fn: (rec: AccountRecord) => void;
  resolve: (rec: AccountRecord) => void;
  reject: (err: unknown) => void;
}

/** A stored row as read: its record as JSON text (parsed into a draft) and its version. */
interface Stored {
  text: string;
  version: string;
}

type Outcome = { ok: AccountRecord } | { err: unknown };

/** What apply() leaves: the rows to write and each change's outcome, should they be written. */
interface Applied {
  after: Map<string, AccountRecord>;
  /** the stored record's state and phase, for the notices */
  base: Map<string, Pick<AccountRecord, 'state' | 'transferPhase' | 'updatedAt'>>;
  results: Map<Change, Outcome>;
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

  /**
   * Optimistic first; what lost a race goes again with its rows locked, until it lands. A
   * deadlock PostgreSQL broke (a locked batch making a row the other is making too) ended
   * that statement with nothing written: its changes go again, locked.
   */
  private async commit(batch: Change[]): Promise<void> {
    let left = await this.commitOptimistic(batch).catch((err: unknown) => {
      if (!isDeadlock(err)) throw err;
      return batch;
    });
    for (let deadlocks = 0; left.length > 0;) {
      try {
        left = await this.commitLocked(left);
      } catch (err) {
        if (!isDeadlock(err) || ++deadlocks > DEADLOCK_RETRIES) throw err;
      }
    }
  }

  /** Two round trips, no transaction: returns the changes whose rows changed meanwhile. */
  private async commitOptimistic(batch: Change[]): Promise<Change[]> {
    const keys = [...new Set(batch.map((c) => c.key))];
    const { rows } = await this.ctx.pool.query({
      name: 'autoport-batch-read',
      text: READ_ROWS,
      values: [keys],
    });
    const stored = storedOf(rows);
    const applied = this.apply(batch, stored);
    const written = await this.write(this.ctx.pool, applied, stored);
    return this.settle(applied, written);
  }

  /** The rows locked from the read to the commit, so only a row made meanwhile misses. */
  private async commitLocked(batch: Change[]): Promise<Change[]> {
    const client = await this.ctx.pool.connect();
    try {
      await client.query('BEGIN');
      const keys = [...new Set(batch.map((c) => c.key))].sort();
      const { rows } = await client.query(`${READ_ROWS} FOR UPDATE`, [keys]);
      const stored = storedOf(rows);
      const applied = this.apply(batch, stored);
      const written = await this.write(client, applied, stored);
      await client.query('COMMIT');
      return this.settle(applied, written);
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  /**
   * Each function on the record as the changes before it in the batch left it. The first
   * change of a row works on the stored record's own parse, a later one on a copy of what
   * the one before it left.
   */
  private apply(batch: Change[], stored: Map<string, Stored>): Applied {
    const after = new Map<string, AccountRecord>();
    const base: Applied['base'] = new Map();
    const results = new Map<Change, Outcome>();
    const nowIso = this.ctx.now().toISOString();
    for (const c of batch) {
      const prev = after.get(c.key);
      const draft = prev ? structuredClone(prev) : this.draftOf(c.key, stored, base, nowIso);
      try {
        applyUpdate(c.key, draft, c.fn);
        const next = settleRecord(prev ?? base.get(c.key), draft, nowIso);
        after.set(c.key, next);
        results.set(c, { ok: next });
      } catch (err) {
        results.set(c, { err });
      }
    }
    return { after, base, results };
  }

  /** The stored record parsed afresh (a function that threw may have half-changed the last one). */
  private draftOf(
    key: string,
    stored: Map<string, Stored>,
    base: Applied['base'],
    nowIso: string,
  ): AccountRecord {
    const row = stored.get(key);
    if (!row) return newRecord(key, nowIso);
    const rec = JSON.parse(row.text) as AccountRecord;
    if (!base.has(key))
      base.set(key, {
        state: rec.state,
        transferPhase: rec.transferPhase,
        updatedAt: rec.updatedAt,
      });
    return rec;
  }

  /** WRITE_ROWS for every changed row; the addresses it wrote. */
  private async write(
    db: pg.Pool | pg.PoolClient,
    { after, base }: Applied,
    stored: Map<string, Stored>,
  ): Promise<Set<string>> {
    if (after.size === 0) return new Set();
    const rows = [...after.values()].map((rec) =>
      rowObject(
        rec,
        this.ctx.node,
        stored.get(rec.address)?.version,
        this.notice(base.get(rec.address), rec),
      ),
    );
    const { rows: written } = await db.query({
      name: 'autoport-batch-write',
      text: WRITE_ROWS,
      values: [JSON.stringify(rows), CHANGES_CHANNEL],
    });
    return new Set(written.map((r: { address: string }) => r.address));
  }

  /** Answer every change whose row was written (or that wrote nothing); the rest go again. */
  private settle({ after, results }: Applied, written: Set<string>): Change[] {
    const again: Change[] = [];
    for (const [c, r] of results) {
      if (after.has(c.key) && !written.has(c.key)) again.push(c);
      else if ('ok' in r) c.resolve(r.ok);
      else c.reject(r.err);
    }
    return again;
  }

  /**
   * The other nodes hear of a new state or phase when it commits (pg-cluster.ts); a new
   * record still unknown is no news (absent reads as unknown).
   */
  private notice(
    old: Pick<AccountRecord, 'state' | 'transferPhase'> | undefined,
    next: AccountRecord,
  ): string | undefined {
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

/** 40P01: PostgreSQL chose this statement to break a deadlock; nothing of it was written. */
function isDeadlock(err: unknown): boolean {
  return (err as { code?: string } | null)?.code === '40P01';
}

function storedOf(rows: Array<{ a: string; v: string; r: string }>): Map<string, Stored> {
  return new Map(rows.map((row) => [row.a, { text: row.r, version: row.v }]));
}
