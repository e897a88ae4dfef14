import { Args, Command } from '@oclif/core';
import { showAccount, withReadOnlyStore } from '../../core/accounts/index.js';
import { renderAccount } from '../../cli/render-accounts.js';
import { styleFor } from '../../cli/style.js';
import { reportCommandError } from '../../cli/errors.js';
import { loadConfig } from '../../core/config/index.js';
import { configFlag, jsonFlag } from '../../cli/flags.js';

export default class AccountsShow extends Command {
  static override summary = 'Show one account: state, logins, transfer per folder, errors.';

  static override description =
    'Reads the state without taking its lock, so it works while `autoport proxy` runs. The stored password is never shown, only whether there is one.';

  static override examples = [
    '<%= config.bin %> accounts show alice@example.org',
    '<%= config.bin %> accounts show alice@example.org --json',
  ];

  static override args = {
    address: Args.string({ description: 'the account (as the user logs in)', required: true }),
  };

  static override flags = {
    config: configFlag,
    json: jsonFlag,
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(AccountsShow);
    try {
      const config = loadConfig(flags.config);
      const detail = await withReadOnlyStore(config, (store) => showAccount(store, args.address));
      if (flags.json) this.log(JSON.stringify(detail, null, 2));
      else
        process.stdout.write(
          renderAccount(detail, process.stdout.columns || 120, styleFor(process.stdout)),
        );
    } catch (err) {
      reportCommandError(err, flags.json);
    }
  }
}
