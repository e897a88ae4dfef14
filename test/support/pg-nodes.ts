/** Two gateway nodes' stores on one PostgreSQL database, joined to its cluster. */
import { openPgStore, type PgStore } from '../../src/core/state/pg-store.js';
import type { ClusterTiming } from '../../src/core/state/types.js';

export interface TwoNodes {
  a: PgStore;
  b: PgStore;
  close(): Promise<void>;
}

export async function twoPgNodes(
  url: string,
  names: [string, string],
  clusterTiming?: ClusterTiming,
): Promise<TwoNodes> {
  const options = (nodeName: string) => ({ nodeName, ...(clusterTiming ? { clusterTiming } : {}) });
  const a = await openPgStore(url, options(names[0]));
  const b = await openPgStore(url, options(names[1]));
  await a.cluster.join();
  await b.cluster.join();
  return {
    a,
    b,
    close: async () => {
      await a.close();
      await b.close();
    },
  };
}
