import { Command } from '@oclif/core';
import { reportCommandError } from '../../cli/errors.js';
import { configFlag, jsonFlag } from '../../cli/flags.js';
import { checkConfig, formatCheck } from '../../core/config/check.js';

export default class ConfigCheck extends Command {
  static override summary = 'Validate the config file without connecting anywhere.';

  static override description =
    'Like `nginx -t` or `postfix check`: validates every key, then checks on disk what `autoport proxy` opens at start (the key file and its mode, the TLS certificate and key, the folders it writes). Exits 1 on any problem; warnings alone exit 0. `autoport check` is the one that connects to the servers.';

  static override examples = [
    '<%= config.bin %> config check',
    '<%= config.bin %> config check --config ./autoport.yaml --json',
  ];

  static override flags = { config: configFlag, json: jsonFlag };

  async run(): Promise<void> {
    const { flags } = await this.parse(ConfigCheck);
    try {
      const { config: _config, ...result } = checkConfig(flags.config);
      if (flags.json) this.log(JSON.stringify(result, null, 2));
      else process.stdout.write(formatCheck(result));
      if (!result.ok) process.exitCode = 1;
    } catch (err) {
      reportCommandError(err, flags.json);
    }
  }
}
