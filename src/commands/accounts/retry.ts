import { Command } from '@oclif/core';
import {
  accountChangeArgs,
  accountChangeFlags,
  runAccountChange,
} from '../../cli/account-change.js';

export default class AccountsRetry extends Command {
  static override summary =
    'Set a failed account back to captured so the worker pool tries again now.';

  static override description =
    'Keeps the stored password and clears the attempt count and the back-off (nextAttemptAt). Fix the cause first: autoport accounts show tells it. While `autoport proxy` runs, the change goes through its control socket and takes effect at once; otherwise this command changes the state itself (the JSON file under its lock, or the PostgreSQL database, whose gateway nodes hear of the change).';

  static override examples = ['<%= config.bin %> accounts retry alice@example.org'];

  static override args = accountChangeArgs;

  static override flags = accountChangeFlags;

  async run(): Promise<void> {
    const { args, flags } = await this.parse(AccountsRetry);
    await runAccountChange((text) => this.log(text), flags, {
      action: 'retry',
      address: args.address,
    });
  }
}
