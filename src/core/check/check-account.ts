/**
 * `autoport check --user <address>`: the pre-flight check, logged in as that user on the
 * source (so the capability table shows what the server offers after login, RFC 3501
 * 7.2.1 allows it to change), and the account's plan exactly as
 * `autoport migrate <address> --dry-run` computes it. Read-only like the plain check: the
 * state is opened read-only (it may belong to a running gateway), nothing is provisioned,
 * created or copied.
 */
import type { Config } from '../config/types.js';
import { OperatorError } from '../errors.js';
import { openStateStore } from '../state/open-store.js';
import type { StateStore } from '../state/types.js';
import { dryRun, type DryRunResult } from '../transfer/dry-run.js';
import { runCheck, type CheckOptions } from './run-check.js';
import type { CheckResult } from './types.js';

export interface AccountCheckResult extends CheckResult {
  account: {
    address: string;
    /** what `migrate <address> --dry-run` would show */
    plan?: DryRunResult;
    /** why there is no plan (e.g. the source refused the password) */
    error?: { code: string; message: string; hint: string };
  };
}

export interface AccountCheckOptions extends CheckOptions {
  /** the state, for what earlier runs copied (default: config.state, opened read-only) */
  store?: StateStore;
  /** replaces the dry run (tests) */
  plan?: typeof dryRun;
}

export async function checkAccount(
  config: Config,
  user: { address: string; password: string },
  options: AccountCheckOptions = {},
): Promise<AccountCheckResult> {
  const { store: given, plan = dryRun, ...checkOptions } = options;
  const store = given ?? (await openStateStore(config, { readOnly: true }));
  try {
    const planned: Promise<AccountCheckResult['account']> = plan(user, { config, store }).then(
      (p) => ({ address: user.address, plan: p }),
      (err: unknown) => {
        if (!(err instanceof OperatorError)) throw err;
        return { address: user.address, error: err.toJSON() };
      },
    );
    const [check, account] = await Promise.all([
      runCheck(config, {
        ...checkOptions,
        credentials: { source: { user: user.address, password: user.password } },
      }),
      planned,
    ]);
    return { ...check, ok: check.ok && !account.error, account };
  } finally {
    if (!given) await store.close();
  }
}
