import { Command } from '@oclif/core';
import {
  accountChangeArgs,
  accountChangeFlags,
  runAccountChange,
} from '../../cli/account-change.js';

export default class AccountsForgetCredentials extends Command {
  static override summary = 'Remove the stored (sealed) password of an account.';

  static override description =
    'The state goes back to unknown (the next login through the gateway captures the password again), except for a migrated or excluded account, which stays as it is. Refused while the account is being moved. While `autoport proxy` runs, the change goes through its control socket and takes effect at once; otherwise this command changes the state itself (the JSON file under its lock, or the PostgreSQL database, whose gateway nodes hear of the change).';

  static override examples = ['<%= config.bin %> accounts forget-credentials alice@example.org'];

  static override args = accountChangeArgs;

  static override flags = accountChangeFlags;

  async run(): Promise<void> {
    const { args, flags } = await this.parse(AccountsForgetCredentials);
    await runAccountChange((text) => this.log(text), flags, {
      action: 'forget-credentials',
      address: args.address,
    });
  }
}
