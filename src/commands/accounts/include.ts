import { Command } from '@oclif/core';
import {
  accountChangeArgs,
  accountChangeFlags,
  runAccountChange,
} from '../../cli/account-change.js';

export default class AccountsInclude extends Command {
  static override summary = 'Undo exclude: the account migrates again.';

  static override description =
    'An excluded account becomes captured when a password is stored (the worker pool then moves it), otherwise unknown (its next login through the gateway captures it). While `autoport proxy` runs, the change goes through its control socket and takes effect at once; otherwise this command changes the state itself (the JSON file under its lock, or the PostgreSQL database, whose gateway nodes hear of the change).';

  static override examples = ['<%= config.bin %> accounts include alice@example.org'];

  static override args = accountChangeArgs;

  static override flags = accountChangeFlags;

  async run(): Promise<void> {
    const { args, flags } = await this.parse(AccountsInclude);
    await runAccountChange((text) => this.log(text), flags, {
      action: 'include',
      address: args.address,
    });
  }
}
