/**
 * What the commands that change one account by hand (accounts exclude, include, retry,
 * forget-credentials) share: the ADDRESS argument, the --config/--json flags, and the run
 * itself: load the config, have the change applied (by the running proxy over its control
 * socket, else under the state lock here), print its result. The helper lives here and not
 * under src/commands because oclif loads every file there as a command.
 */
import { Args } from '@oclif/core';
import type { AccountChange } from '../core/accounts/index.js';
import { loadConfig } from '../core/config/index.js';
import { changeAccount } from '../core/control/proxy-or-store.js';
import { reportCommandError } from './errors.js';
import { configFlag, jsonFlag } from './flags.js';

export const accountChangeArgs = {
  address: Args.string({ description: 'the account (as the user logs in)', required: true }),
};

export const accountChangeFlags = {
  config: configFlag,
  json: jsonFlag,
};

/**
 * Apply `change` and print its result (the message, or the whole result as JSON with
 * --json); an OperatorError is reported and sets exit code 1.
 */
export async function runAccountChange(
  log: (text: string) => void,
  flags: { config?: string | undefined; json: boolean },
  change: AccountChange,
): Promise<void> {
  try {
    const config = loadConfig(flags.config);
    const { result } = await changeAccount(config, change);
    log(flags.json ? JSON.stringify(result, null, 2) : result.message);
  } catch (err) {
    reportCommandError(err, flags.json);
  }
}
