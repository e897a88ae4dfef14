import { Args, Command, Flags } from '@oclif/core';
import { retryAccount, withWritableStore } from '../../core/accounts/index.js';
import { reportCommandError } from '../../core/cli/errors.js';
import { loadConfig } from '../../core/config/index.js';

export default class AccountsRetry extends Command {
  static override summary =
    'Set a failed account back to captured so the worker pool tries again now.';

  static override description =
    'Keeps the stored password and clears the attempt count and the back-off (nextAttemptAt). Fix the cause first: autoport accounts show tells it. Changing the state needs its lock: while `autoport proxy` runs, stop it first.';

  static override examples = ['<%= config.bin %> accounts retry alice@example.org'];

  static override args = {
    address: Args.string({ description: 'the account (as the user logs in)', required: true }),
  };

  static override flags = {
    config: Flags.string({
      char: 'c',
      description: 'config file (default: $AUTOPORT_CONFIG or /etc/autoport/autoport.yaml)',
    }),
    json: Flags.boolean({ description: 'print the result as JSON', default: false }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(AccountsRetry);
    try {
      const config = loadConfig(flags.config);
      const result = await withWritableStore(config.state, (store) =>
        retryAccount(store, args.address),
      );
      this.log(flags.json ? JSON.stringify(result, null, 2) : result.message);
    } catch (err) {
      reportCommandError(err, flags.json);
    }
  }
}
