import { Command } from '@oclif/core';
import { forgetCredentials } from '../../core/accounts/index.js';
import {
  accountChangeArgs,
  accountChangeFlags,
  runAccountChange,
} from '../../core/cli/account-change.js';

export default class AccountsForgetCredentials extends Command {
  static override summary = 'Remove the stored (sealed) password of an account.';

  static override description =
    'The state goes back to unknown (the next login through the gateway captures the password again), except for a migrated or excluded account, which stays as it is. Refused while the account is being moved. Changing the state needs its lock: while `autoport proxy` runs, stop it first.';

  static override examples = ['<%= config.bin %> accounts forget-credentials alice@example.org'];

  static override args = accountChangeArgs;

  static override flags = accountChangeFlags;

  async run(): Promise<void> {
    const { args, flags } = await this.parse(AccountsForgetCredentials);
    await runAccountChange(
      (text) => this.log(text),
      flags,
      (store) => forgetCredentials(store, args.address),
    );
  }
}
