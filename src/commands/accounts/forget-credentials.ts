import { Args, Command, Flags } from '@oclif/core';
import { forgetCredentials, withWritableStore } from '../../core/accounts/index.js';
import { reportCommandError } from '../../core/cli/errors.js';
import { loadConfig } from '../../core/config/index.js';

export default class AccountsForgetCredentials extends Command {
  static override summary = 'Remove the stored (sealed) password of an account.';

  static override description =
    'The state goes back to unknown (the next login through the gateway captures the password again), except for a migrated or excluded account, which stays as it is. Refused while the account is being moved. Changing the state needs its lock: while `autoport proxy` runs, stop it first.';

  static override examples = ['<%= config.bin %> accounts forget-credentials alice@example.org'];

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
    const { args, flags } = await this.parse(AccountsForgetCredentials);
    try {
      const config = loadConfig(flags.config);
      const result = await withWritableStore(config.state, (store) =>
        forgetCredentials(store, args.address),
      );
      this.log(flags.json ? JSON.stringify(result, null, 2) : result.message);
    } catch (err) {
      reportCommandError(err, flags.json);
    }
  }
}
