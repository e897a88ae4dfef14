/**
 * The worker pool's MigrateFn over the copy engine: one ledger and one provisioner for
 * the gateway's lifetime, migrateAccount per account.
 */
import { dirname, join } from 'node:path';
import type { Config } from '../config/types.js';
import type { Logger } from '../log/logger.js';
import { makeProvisioner } from '../provision/index.js';
import type { StateStore } from '../state/types.js';
import { openLedger, type Ledger } from '../transfer/copy/ledger.js';
import { migrateAccount } from '../transfer/migrate-account.js';
import type { MigrateFn } from '../workers/worker-pool.js';

export async function makeMigrateFn(
  config: () => Config,
  store: StateStore,
  logger: Logger,
): Promise<{ migrate: MigrateFn; close(): Promise<void> }> {
  // the same ledger `autoport migrate` writes: beside the state
  const ledger: Ledger = await openLedger(join(dirname(config().state), 'ledger.jsonl'));
  const migrate: MigrateFn = async (req, signal, onProgress) => {
    const c = config();
    const result = await migrateAccount(req, {
      config: c,
      store,
      ledger,
      provisioner: makeProvisioner(c.destination.provision),
      signal,
      onEvent: (e) => {
        if (e.type === 'warning') logger.warn(e.message, { address: e.address });
        else if (e.type === 'progress' && onProgress) {
          const { folder, phase, toCopy, toCopyBytes, copied, copiedBytes, failed } = e.progress;
          onProgress({ folder, phase, toCopy, toCopyBytes, copied, copiedBytes, failed });
        }
      },
    });
    return { ok: result.ok, detail: result.ok ? undefined : result.errors[0] };
  };
  return { migrate, close: () => ledger.close() };
}
