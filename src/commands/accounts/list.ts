import { Command, Flags } from '@oclif/core';
import { listAccounts, withReadOnlyStore } from '../../core/accounts/index.js';
import { renderAccountList } from '../../cli/render-accounts.js';
import { styleFor } from '../../cli/style.js';
import { reportCommandError } from '../../cli/errors.js';
import { loadConfig } from '../../core/config/index.js';
import { ACCOUNT_STATES, type AccountState } from '../../core/state/types.js';
import { configFlag, jsonFlag } from '../../cli/flags.js';

export default class AccountsList extends Command {
  static override summary = 'List account records, optionally by state.';

  static override description =
    'Reads the state without taking its lock, so it works while `autoport proxy` runs (it shows the state as of the last save). Passwords are never shown, only whether one is stored.';

  static override examples = [
    '<%= config.bin %> accounts list',
    '<%= config.bin %> accounts list --state failed --state captured',
    "<%= config.bin %> accounts list --imported --json | jq -r '.[].address'",
  ];

  static override flags = {
    config: configFlag,
    json: jsonFlag,
    state: Flags.string({
      description: 'only accounts in this state (repeat for several)',
      options: [...ACCOUNT_STATES],
      multiple: true,
    }),
    imported: Flags.boolean({
      description: 'only accounts imported with `accounts import` (--no-imported: only others)',
      allowNo: true,
    }),
    match: Flags.string({ description: 'only addresses containing this text' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(AccountsList);
    try {
      const config = loadConfig(flags.config);
      const list = await withReadOnlyStore(config, (store) =>
        listAccounts(store, {
          ...(flags.state ? { state: flags.state as AccountState[] } : {}),
          ...(flags.imported !== undefined ? { imported: flags.imported } : {}),
          ...(flags.match ? { match: flags.match } : {}),
        }),
      );
      if (flags.json) this.log(JSON.stringify(list, null, 2));
      else
        process.stdout.write(
          renderAccountList(list, process.stdout.columns || 120, styleFor(process.stdout)),
        );
    } catch (err) {
      reportCommandError(err, flags.json);
    }
  }
}
