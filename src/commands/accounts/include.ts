import { Args, Command, Flags } from '@oclif/core';
import { includeAccount, withWritableStore } from '../../core/accounts/index.js';
import { reportCommandError } from '../../core/cli/errors.js';
import { loadConfig } from '../../core/config/index.js';

export default class AccountsInclude extends Command {
  static override summary = 'Undo exclude: the account migrates again.';

  static override description =
    'An excluded account becomes captured when a password is stored (the worker pool then moves it), otherwise unknown (its next login through the gateway captures it). Changing the state needs its lock: while `autoport proxy` runs, stop it first.';

  static override examples = ['<%= config.bin %> accounts include alice@example.org'];

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
    const { args, flags } = await this.parse(AccountsInclude);
    try {
      const config = loadConfig(flags.config);
      const result = await withWritableStore(config.state, (store) =>
        includeAccount(store, args.address),
      );
      this.log(flags.json ? JSON.stringify(result, null, 2) : result.message);
    } catch (err) {
      reportCommandError(err, flags.json);
    }
  }
}
