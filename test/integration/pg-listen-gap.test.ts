/**
 * A node's LISTEN connection can drop (a database restart, a proxy's idle cut); the
 * NOTIFYs sent until it is back are lost. A switch started on another node meanwhile must
 * still reach this node, or its sessions to that account's source stay open through the
 * final pass: after the gap the accounts being moved are read back (pg-cluster.ts).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { PgStore } from '../../src/core/state/pg-store.js';
import type { ClusterChange, SealedSecret } from '../../src/core/state/types.js';
import { twoPgNodes, type TwoNodes } from '../support/pg-nodes.js';
import { startPostgres, type PostgresInstance } from '../support/postgres.js';

const SEALED: SealedSecret = { kid: 'k1', iv: 'aXY=', tag: 'dGFn', data: 'ZGF0YQ==' };
const FAST = { heartbeatMs: 100, leaseMs: 600 };

let server: PostgresInstance;
let nodes: TwoNodes;
let a: PgStore;
let b: PgStore;

before(async () => {
  server = await startPostgres();
  nodes = await twoPgNodes(server.url, ['gap-a', 'gap-b'], FAST);
  ({ a, b } = nodes);
});
after(async () => {
  await nodes?.close();
  await server?.stop();
});

/** Ends every LISTEN connection on the database; returns how many. */
async function cutListeners(): Promise<number> {
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  try {
    const { rows } = await admin.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
       WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()`,
    );
    return rows.length;
  } finally {
    await admin.end();
  }
}

describe('a LISTEN connection lost and back', () => {
  it('a switch another node started during the gap reaches this node after it', async () => {
    await a.upsert('gap@x.org', { state: 'captured', credentials: SEALED });
    const seen: ClusterChange[] = [];
    const off = b.cluster.onChange((c) => seen.push(c));
    try {
      assert.ok((await cutListeners()) >= 2, 'both nodes listened');
      // a takes the account and locks it for its switch while b is not listening
      assert.equal(await a.cluster.claim('gap@x.org'), true);
      await a.update('gap@x.org', (r) => {
        r.state = 'transferring';
        r.transferPhase = 'switching';
      });
      const start = Date.now();
      while (!seen.some((c) => c.address === 'gap@x.org' && c.state === 'transferring')) {
        assert.ok(Date.now() - start < 5000, 'the switch never reached the other node');
        await sleep(20);
      }
      const lock = seen.find((c) => c.address === 'gap@x.org' && c.state === 'transferring')!;
      assert.equal(lock.phase, 'switching');
      assert.equal(lock.node, a.cluster.node);
      // and b listens again: a change made now arrives as a NOTIFY
      await a.update('gap@x.org', (r) => {
        r.state = 'migrated';
        r.transferPhase = undefined;
      });
      const again = Date.now();
      while (!seen.some((c) => c.address === 'gap@x.org' && c.state === 'migrated')) {
        assert.ok(Date.now() - again < 2000, 'no NOTIFY after the reconnect');
        await sleep(20);
      }
    } finally {
      off();
    }
  });
});
