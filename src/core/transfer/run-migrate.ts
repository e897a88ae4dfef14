/**
 * What `autoport migrate` does once its flags are parsed: open the store (the single
 * writer: it fails with what to do while `autoport proxy` holds it), the ledger and the
 * provisioner, then move one account, every captured one, or only plan (dry run). The
 * command itself only parses and prints.
 */
import { join } from 'node:path';
import type { Config } from '../config/types.js';
import { asOperatorError, openAccountStore } from '../accounts/open.js';
import { OperatorError } from '../errors.js';
import { makeProvisioner } from '../provision/index.js';
import { loadKeyring, openText } from '../state/crypto.js';
import type { StateStore } from '../state/types.js';
import { openLedger } from './copy/ledger.js';
import { dryRun, type DryRunResult } from './dry-run.js';
import { migrateAccount, type MigrateDeps } from './migrate-account.js';
import { migrateMany, pendingAccounts } from './migrate-many.js';
import type { MigrateEvent } from './result.js';

export interface MigrateRunOptions {
  /** one account, or undefined with all: true */
  address?: string;
  all: boolean;
  /** from --password-stdin; else the captured one from the state */
  password?: string;
  concurrency?: number;
  verify: MigrateDeps['verify'];
  /** --repair: copy again what is missing on the destination, user deletions included */
  repair?: boolean;
  onEvent?: (e: MigrateEvent) => void;
  /** log lines for the operator (accounts skipped, errors) */
  warn: (line: string) => void;
  /** aborted (Ctrl-C in the CLI): stop at a safe point; the reason is what gets thrown */
  signal?: AbortSignal;
}

export type MigrateRunResult =
  | { kind: 'one'; result: Awaited<ReturnType<typeof migrateAccount>>; ok: boolean }
  | { kind: 'all'; result: Awaited<ReturnType<typeof migrateMany>>; ok: boolean };

/** `migrate <address> --dry-run`: the plan, nothing changed. */
export async function runDryRun(
  config: Config,
  address: string,
  password: string | undefined,
): Promise<DryRunResult> {
  const store = await openAccountStore(config);
  try {
    return await dryRun(
      { address, password: password ?? (await storedPassword(store, config, address)) },
      { config, store },
    );
  } catch (err) {
    throw migrateError(err);
  } finally {
    await store.close();
  }
}

/** Move one account or all captured ones; `o.signal` stops the move at a safe point. */
export async function runMigrate(config: Config, o: MigrateRunOptions): Promise<MigrateRunResult> {
  const store = await openAccountStore(config);
  const ledger = await openLedger(join(config.stateDir, 'ledger.jsonl'));
  const deps: MigrateDeps = {
    config,
    store,
    ledger,
    provisioner: makeProvisioner(config.destination.provision),
    onEvent: (e) => o.onEvent?.(e),
    signal: o.signal,
    verify: o.verify,
    repair: o.repair,
  };
  try {
    // with gateway nodes on the same database, this process is one more node for a while
    await store.cluster.join();
    if (o.all) {
      const { accounts, unusable } = await pendingAccounts(store, loadKeyring(config.keyFile));
      for (const u of unusable) o.warn(`skipped ${u.address}: ${u.reason}`);
      const concurrency = o.concurrency ?? config.transfer.concurrency;
      const many = await migrateMany(accounts, concurrency, deps, (a, move) =>
        claimed(store, a, move),
      );
      for (const f of many.failed) o.warn(`error: ${f.address}: ${f.error}`);
      const ok = !many.failed.length && many.results.every((r) => r.ok) && !unusable.length;
      return { kind: 'all', result: many, ok };
    }
    const address = o.address as string;
    const password = o.password ?? (await storedPassword(store, config, address));
    const result = await claimed(store, address, () => migrateAccount({ address, password }, deps));
    return { kind: 'one', result, ok: result.ok };
  } catch (err) {
    throw migrateError(err);
  } finally {
    await ledger.close();
    await store.close();
  }
}

/**
 * Move an account only while this process holds its claim: a gateway node sharing the
 * database may be moving it (state/types.ts, Cluster). The JSON store's lock already
 * keeps the gateway out, so there it is always granted.
 */
async function claimed<T>(store: StateStore, address: string, move: () => Promise<T>): Promise<T> {
  // no record, no one moving it: the move creates it (--password-stdin)
  if (!(await store.cluster.claim(address)) && (await store.get(address)))
    throw new OperatorError(
      `${address} is being moved or swept by a gateway node (${store.location})`,
      `wait for it to finish (autoport accounts show ${address}), then run this again if needed`,
      'EBUSY',
    );
  try {
    return await move();
  } finally {
    await store.cluster.release(address).catch(() => undefined);
  }
}

async function storedPassword(store: StateStore, config: Config, address: string): Promise<string> {
  const rec = await store.get(address);
  if (!rec?.credentials) {
    throw new OperatorError(
      `no captured password for ${address} in ${store.location}`,
      `let the user log in once through the gateway, or pass the password: printf '%s' "$PASSWORD" | autoport migrate ${address} --password-stdin`,
      'ENOCREDENTIALS',
    );
  }
  return openText(loadKeyring(config.keyFile), rec.credentials, rec.address);
}

/** State errors already say what to try; provisioning errors point at the config. */
function migrateError(err: unknown): unknown {
  const e = err as { name?: string; message?: string };
  if (e?.name === 'ProvisionError')
    return new OperatorError(
      e.message ?? 'provisioning failed',
      'check destination.provision in the config',
      'EPROVISION',
      { cause: err },
    );
  return asOperatorError(err);
}
