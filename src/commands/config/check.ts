import { Command, Flags } from '@oclif/core';
import { reportCommandError } from '../../cli/errors.js';
import { configFlag, jsonFlag } from '../../cli/flags.js';
import { checkConfig, formatCheck } from '../../core/config/check.js';
import { stateConnectionProblem } from '../../core/config/state-check.js';

export default class ConfigCheck extends Command {
  static override summary = 'Validate the config file without connecting anywhere.';

  static override description =
    'Like `nginx -t` or `postfix check`: validates every key, then checks on disk what `autoport proxy` opens at start (the key file and its mode, the TLS certificate and key, the folders it writes). With `--connect-state`, a postgresql:// state is also connected to (SELECT 1; nothing written). Exits 1 on any problem; warnings alone exit 0. `autoport check` is the one that connects to the servers.';

  static override examples = [
    '<%= config.bin %> config check',
    '<%= config.bin %> config check --config ./autoport.yaml --json',
  ];

  static override flags = {
    config: configFlag,
    json: jsonFlag,
    'connect-state': Flags.boolean({
      description: 'also connect to a postgresql:// state (the one check that connects)',
    }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(ConfigCheck);
    try {
      const { config, ...result } = checkConfig(flags.config);
      const unreachable =
        flags['connect-state'] && config ? await stateConnectionProblem(config) : undefined;
      if (unreachable) {
        result.problems.push(unreachable);
        result.ok = false;
      }
      if (flags.json) this.log(JSON.stringify(result, null, 2));
      else process.stdout.write(formatCheck(result));
      if (!result.ok) process.exitCode = 1;
    } catch (err) {
      reportCommandError(err, flags.json);
    }
  }
}
