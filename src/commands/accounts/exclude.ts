import { Command, Flags } from '@oclif/core';
import {
  accountChangeArgs,
  accountChangeFlags,
  runAccountChange,
} from '../../cli/account-change.js';

export default class AccountsExclude extends Command {
  static override summary = 'Keep an account on the source: never captured, never moved.';

  static override description =
    'The gateway keeps routing the account to the source and never stores its password. Works for an account never seen yet (it is excluded from its first login on). Refused for a migrated account or one being moved. While `autoport proxy` runs, the change goes through its control socket and takes effect at once; otherwise this command changes the state itself (the JSON file under its lock, or the PostgreSQL database, whose gateway nodes hear of the change).';

  static override examples = [
    '<%= config.bin %> accounts exclude alice@example.org --reason "shared mailbox, moved by hand"',
  ];

  static override args = accountChangeArgs;

  static override flags = {
    ...accountChangeFlags,
    reason: Flags.string({ description: 'why (shown by accounts list and report leftovers)' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(AccountsExclude);
    await runAccountChange((text) => this.log(text), flags, {
      action: 'exclude',
      address: args.address,
      reason: flags.reason,
    });
  }
}
