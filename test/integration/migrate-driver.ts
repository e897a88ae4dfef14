/**
 * Runs one migrateAccount in its own process, for tests that kill it (kill -9 mid-copy)
 * and for the transfer benchmark. Usage: node --import tsx migrate-driver.ts <job.json>
 * where the job holds { config, address, password, dir, provision?: boolean }.
 * Prints one JSON line with the result; exit code 0 when the account migrated cleanly.
 */
import { readFileSync } from 'node:fs';
import type { Config } from '../../src/core/config/types.js';
import { makeProvisioner } from '../../src/core/provision/index.js';
import { migrateAccount } from '../../src/core/transfer/migrate-account.js';
import { join } from 'node:path';
import { openJsonStore } from '../../src/core/state/json-store.js';
import { openLedger } from '../../src/core/transfer/copy/ledger.js';

interface Job {
  config: Config;
  address: string;
  password: string;
  dir: string;
  provision?: boolean;
  verify?: 'written' | 'all' | 'none';
}

if (process.env.MIGRATE_DRIVER_MEMTRACE) {
  setInterval(() => {
    const m = process.memoryUsage();
    process.stderr.write(
      `mem rss=${m.rss >> 20} heap=${m.heapUsed >> 20} ext=${m.external >> 20} ab=${m.arrayBuffers >> 20}\n`,
    );
  }, 200).unref();
}
const job = JSON.parse(readFileSync(process.argv[2] as string, 'utf8')) as Job;
// no test/support imports here: this file is also bundled and run as plain JavaScript
const store = await openJsonStore(join(job.dir, 'state.json'));
const ledger = await openLedger(join(job.dir, 'ledger.jsonl'));
const st = { store, ledger, close: async () => (await ledger.close(), await store.close()) };
let copied = 0;
try {
  const result = await migrateAccount(
    { address: job.address, password: job.password },
    {
      config: job.config,
      store: st.store,
      ledger: st.ledger,
      provisioner:
        job.provision === false ? undefined : makeProvisioner(job.config.destination.provision),
      verify: job.verify,
      onEvent: (e) => {
        // a progress line the parent can wait for before it kills us
        if (e.type === 'progress' && e.progress.copied - copied >= 50) {
          copied = e.progress.copied;
          process.stderr.write(`progress ${e.progress.folder} ${copied}\n`);
        }
      },
    },
  );
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exitCode = result.ok ? 0 : 1;
} finally {
  await st.close();
}
