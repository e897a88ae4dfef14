/** Side data in PostgreSQL (see side-data.ts): one row per account and key, shared by every node. */
import type pg from 'pg';
import { normalizeAddress } from './records.js';
import type { SideData } from './types.js';

export class PgSideData implements SideData {
  /** `assertWritable` throws for a store that must not change (closed, or read-only) */
  constructor(
    private readonly query: (sql: string, args: unknown[]) => Promise<pg.QueryResult>,
    private readonly assertWritable: () => void,
  ) {}

  async read<T>(address: string, key: string): Promise<T | undefined> {
    const { rows } = await this.query(
      'SELECT data FROM autoport_side WHERE address = $1 AND key = $2',
      [normalizeAddress(address), key],
    );
    return rows[0] ? (rows[0].data as T) : undefined;
  }

  async write(address: string, key: string, data: unknown): Promise<void> {
    this.assertWritable();
    await this.query(
      `INSERT INTO autoport_side (address, key, data) VALUES ($1, $2, $3)
       ON CONFLICT (address, key) DO UPDATE SET data = $3, written = clock_timestamp()`,
      [normalizeAddress(address), key, JSON.stringify(data)],
    );
  }

  async version(address: string, key: string): Promise<number | undefined> {
    const { rows } = await this.query(
      `SELECT (extract(epoch FROM written) * 1000000)::bigint::text AS v
       FROM autoport_side WHERE address = $1 AND key = $2`,
      [normalizeAddress(address), key],
    );
    return rows[0] ? Number(rows[0].v) : undefined;
  }

  async readMany(
    addresses: readonly string[],
    keys: readonly string[],
  ): Promise<Array<{ address: string; key: string; data: unknown }>> {
    const { rows } = await this.query(
      'SELECT address, key, data FROM autoport_side WHERE address = ANY($1) AND key = ANY($2)',
      [addresses.map(normalizeAddress), keys],
    );
    return rows as Array<{ address: string; key: string; data: unknown }>;
  }

  async remove(address: string): Promise<void> {
    this.assertWritable();
    await this.query('DELETE FROM autoport_side WHERE address = $1', [normalizeAddress(address)]);
  }
}
