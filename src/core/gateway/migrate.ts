/**
 * The worker pool's MigrateFn and SweepFn over the copy engine: one ledger for the
 * gateway's lifetime, migrateAccount per account, sweepAccount for its late mail.
 */
import { join } from 'node:path';
import type { Config } from '../config/types.js';
import type { Logger } from '../log/logger.js';
import { makeProvisioner } from '../provision/index.js';
import type { StateStore, TransferLock } from '../state/types.js';
import { openLedger, type Ledger } from '../transfer/copy/ledger.js';
import { migrateAccount } from '../transfer/migrate-account.js';
import { sweepAccount } from '../transfer/sweep.js';
import type { FolderOps } from '../transfer/migrate-deps.js';
import type { SweepFn } from '../workers/late-mail.js';
import type { MigrateFn } from '../workers/worker-pool.js';

export async function makeMigrateFn(
  config: () => Config,
  store: StateStore,
  logger: Logger,
  /** the copy engine's folder operations (default DEFAULT_FOLDER_OPS; a test may hold a pass) */
  folders?: FolderOps,
): Promise<{ migrate: MigrateFn; sweep: SweepFn; close(): Promise<void> }> {
  // the same ledger `autoport migrate` writes: in the state folder
  const ledger: Ledger = await openLedger(join(config().stateDir, 'ledger.jsonl'));
  const migrate: MigrateFn = async (req, signal, hooks = {}) => {
    const { onProgress, onLocked } = hooks;
    const c = config();
    // a move that throws after its switch still reports its lock (the 'done' event)
    let lock: TransferLock | undefined;
    const result = await migrateAccount(req, {
      config: c,
      store,
      ledger,
      provisioner: makeProvisioner(c.destination.provision),
      signal,
      folders,
      onLocked,
      onEvent: (e) => {
        if (e.type === 'done') lock = e.result.lock;
        else if (e.type === 'folder-done' && (e.folder.verify?.ok === false || e.folder.failed))
          logger.warn(`${e.folder.source}: not all copied or verified`, {
            address: e.address,
            failed: e.folder.failed,
            differences: e.folder.verify?.differences,
            examples: e.folder.verify?.examples,
          });
        else if (e.type === 'warning') logger.warn(e.message, { address: e.address });
        else if (e.type === 'progress' && onProgress) {
          const { folder, phase, toCopy, toCopyBytes, copied, copiedBytes, failed } = e.progress;
          onProgress({ folder, phase, toCopy, toCopyBytes, copied, copiedBytes, failed });
        }
      },
    }).catch((err: unknown) => {
      throw Object.assign(err as Error, { lock });
    });
    return { ok: result.ok, detail: result.ok ? undefined : result.errors[0], lock: result.lock };
  };
  const sweep: SweepFn = (req, signal) =>
    sweepAccount(req, {
      config: config(),
      store,
      ledger,
      signal,
      onEvent: (e) => {
        if (e.type === 'warning') logger.warn(e.message, { address: e.address });
      },
    });
  return { migrate, sweep, close: () => ledger.close() };
}
