import { Args, Command, Flags } from '@oclif/core';
import { excludeAccount, withWritableStore } from '../../core/accounts/index.js';
import { reportCommandError } from '../../core/cli/errors.js';
import { loadConfig } from '../../core/config/index.js';

export default class AccountsExclude extends Command {
  static override summary = 'Keep an account on the source: never captured, never moved.';

  static override description =
    'The gateway keeps routing the account to the source and never stores its password. Works for an account never seen yet (it is excluded from its first login on). Refused for a migrated account or one being moved. Changing the state needs its lock: while `autoport proxy` runs, stop it first.';

  static override examples = [
    '<%= config.bin %> accounts exclude alice@example.org --reason "shared mailbox, moved by hand"',
  ];

  static override args = {
    address: Args.string({ description: 'the account (as the user logs in)', required: true }),
  };

  static override flags = {
    config: Flags.string({
      char: 'c',
      description: 'config file (default: $AUTOPORT_CONFIG or /etc/autoport/autoport.yaml)',
    }),
    json: Flags.boolean({ description: 'print the result as JSON', default: false }),
    reason: Flags.string({ description: 'why (shown by accounts list and report leftovers)' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(AccountsExclude);
    try {
      const config = loadConfig(flags.config);
      const result = await withWritableStore(config.state, (store) =>
        excludeAccount(store, args.address, flags.reason),
      );
      this.log(flags.json ? JSON.stringify(result, null, 2) : result.message);
    } catch (err) {
      reportCommandError(err, flags.json);
    }
  }
}
