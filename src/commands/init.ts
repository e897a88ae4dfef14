import { Command, Flags } from '@oclif/core';
import { reportCommandError } from '../cli/errors.js';
import { initConfig, resolveConfigPath } from '../core/config/index.js';
import { generateKeyFile } from '../core/state/crypto.js';
import { jsonFlag } from '../cli/flags.js';

export default class Init extends Command {
  static override summary = 'Write a commented config file and a fresh credentials key.';

  static override description = [
    'Writes the configuration template (every key explained in a comment) and creates the key file that encrypts captured passwords (mode 0600). An existing config is kept unless --force is given; an existing key file is always kept, because replacing it would make stored credentials unreadable.',
    'The config path is --config, else $AUTOPORT_CONFIG, else /etc/autoport/autoport.yaml.',
  ].join('\n\n');

  static override examples = [
    '<%= config.bin %> init',
    '<%= config.bin %> init --config ./autoport.yaml',
    '<%= config.bin %> init --config /etc/autoport/autoport.yaml --force',
  ];

  static override flags = {
    config: Flags.string({
      char: 'c',
      description:
        'config file to write (default: $AUTOPORT_CONFIG or /etc/autoport/autoport.yaml)',
    }),
    force: Flags.boolean({
      description: 'replace an existing config with the template (the key file is kept)',
      default: false,
    }),
    json: jsonFlag,
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Init);
    try {
      const result = await initConfig({
        configPath: resolveConfigPath(flags.config),
        force: flags.force,
        generateKey: (path) => generateKeyFile(path),
      });
      if (flags.json) {
        this.log(JSON.stringify({ ok: true, ...result }, null, 2));
        return;
      }
      this.log(`${result.overwritten ? 'replaced' : 'wrote'} ${result.configFile}`);
      this.log(
        result.keyCreated
          ? `created key ${result.keyFile} (mode 0600)`
          : `kept existing key ${result.keyFile}`,
      );
      this.log('\nnext steps:');
      result.nextSteps.forEach((step, i) => this.log(`  ${i + 1}. ${step}`));
    } catch (err) {
      reportCommandError(err, flags.json);
    }
  }
}
