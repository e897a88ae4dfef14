import { Command } from '@oclif/core';
import { stringify } from 'yaml';
import { reportCommandError } from '../../cli/errors.js';
import { configFlag, jsonFlag } from '../../cli/flags.js';
import { effectiveConfig } from '../../core/config/check.js';
import { loadConfig } from '../../core/config/index.js';

export default class ConfigShow extends Command {
  static override summary = 'Print the effective config: defaults filled in, secrets hidden.';

  static override description =
    'Like `doveconf -n`: the config as `autoport proxy` sees it after validation, with every default filled in and paths made absolute. Secrets read from files or the environment are shown as (hidden).';

  static override examples = [
    '<%= config.bin %> config show',
    '<%= config.bin %> config show --json',
  ];

  static override flags = { config: configFlag, json: jsonFlag };

  async run(): Promise<void> {
    const { flags } = await this.parse(ConfigShow);
    try {
      const config = loadConfig(flags.config);
      const shown = effectiveConfig(config);
      if (flags.json) this.log(JSON.stringify(shown, null, 2));
      else process.stdout.write(`# ${config.file}\n${stringify(shown)}`);
    } catch (err) {
      reportCommandError(err, flags.json);
    }
  }
}
