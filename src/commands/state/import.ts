import { Command, Flags } from '@oclif/core';
import { reportCommandError } from '../../cli/errors.js';
import { configFlag, jsonFlag } from '../../cli/flags.js';
import { renderImport } from '../../cli/render-state.js';
import { loadConfig } from '../../core/config/index.js';
import { importState, spoolToFile, withImportStore } from '../../core/state-move/index.js';

export default class StateImport extends Command {
  static override summary =
    'Load a dump of `state export` into the configured state (a JSON file or PostgreSQL).';

  static override description =
    'The whole dump is checked first (every line, its counts and digests) and a dump cut short or damaged changes nothing. The target must be empty unless --merge: then accounts it lacks are added, identical ones skipped, and any that differ refuse the import before anything is written. Records are written exactly as exported (credentials stay sealed), side files under the target state folder, and everything is read back and compared at the end. Refuses while `autoport proxy` uses the state.';

  static override examples = [
    '<%= config.bin %> state import --file state.jsonl',
    '<%= config.bin %> state import --config new.yaml --file state.jsonl --json',
  ];

  static override flags = {
    config: configFlag,
    file: Flags.string({
      char: 'f',
      description: 'the dump to read, or - for standard input',
      required: true,
    }),
    merge: Flags.boolean({
      description: 'import into a state that already holds accounts (identical ones skipped)',
      default: false,
    }),
    json: jsonFlag,
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(StateImport);
    try {
      const config = loadConfig(flags.config);
      const spooled = flags.file === '-' ? await spoolToFile(process.stdin) : undefined;
      try {
        const summary = await withImportStore(config, (store) =>
          importState(store, spooled?.path ?? flags.file, {
            merge: flags.merge,
            name: spooled ? 'standard input' : flags.file,
          }),
        );
        this.log(flags.json ? JSON.stringify(summary, null, 2) : renderImport(summary).trimEnd());
      } finally {
        await spooled?.remove();
      }
    } catch (err) {
      reportCommandError(err, flags.json);
    }
  }
}
