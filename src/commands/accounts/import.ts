import { Args, Command } from '@oclif/core';
import { readFile } from 'node:fs/promises';
import { reportCommandError } from '../../cli/errors.js';
import { loadConfig } from '../../core/config/index.js';
import { importAccountList } from '../../core/control/proxy-or-store.js';
import { OperatorError } from '../../core/errors.js';
import { configFlag, jsonFlag } from '../../cli/flags.js';

export default class AccountsImport extends Command {
  static override summary =
    'Import the list of all source accounts, so report leftovers shows who never logged in.';

  static override description =
    'The file has one address per line; # starts a comment, blank lines are ignored. New addresses get a record in state unknown, marked imported; existing records are only marked. A bad line stops the import before anything changes. While `autoport proxy` runs, the import goes through its control socket; otherwise this command changes the state itself (the JSON file under its lock, or the PostgreSQL database, whose gateway nodes hear of the change).';

  static override examples = [
    '<%= config.bin %> accounts import all-accounts.txt',
    "doveadm user '*' > all.txt && <%= config.bin %> accounts import all.txt --json",
  ];

  static override args = {
    file: Args.string({
      description: 'the list: one address per line, # comments',
      required: true,
    }),
  };

  static override flags = {
    config: configFlag,
    json: jsonFlag,
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(AccountsImport);
    try {
      const config = loadConfig(flags.config);
      const text = await readFile(args.file, 'utf8').catch((err: NodeJS.ErrnoException) => {
        throw new OperatorError(
          `cannot read ${args.file}: ${err.code ?? err.message}`,
          'give the path of a text file with one address per line',
          'EIMPORT',
          { cause: err },
        );
      });
      const { result: r } = await importAccountList(config, text, args.file);
      if (flags.json) this.log(JSON.stringify(r, null, 2));
      else
        this.log(
          `imported ${r.total} address(es): ${r.added} new, ${r.marked} already known and now marked, ${r.unchanged} imported before` +
            (r.duplicates > 0 ? `; ${r.duplicates} duplicate line(s) ignored` : ''),
        );
    } catch (err) {
      reportCommandError(err, flags.json);
    }
  }
}
