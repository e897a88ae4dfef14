import { Command, Flags } from '@oclif/core';
import { reportCommandError } from '../../cli/errors.js';
import { configFlag, jsonFlag } from '../../cli/flags.js';
import { renderExport } from '../../cli/render-state.js';
import { loadConfig } from '../../core/config/index.js';
import { exportState, exportStateToFile, withExportStore } from '../../core/state-move/index.js';

export default class StateExport extends Command {
  static override summary =
    'Write every account record and side file of the state to a dump, to move it to another store.';

  static override description =
    'The dump is JSON lines: a header, one line per account exactly as stored (credentials stay sealed, never opened), one per side file (copy checkpoints, UIDL maps), and an end line with counts and digests that `state import` checks. Works on a JSON state file or PostgreSQL; refuses while `autoport proxy` uses the state. With `--file -` the dump goes to standard output and the summary to standard error.';

  static override examples = [
    '<%= config.bin %> state export --config old.yaml --file state.jsonl',
    '<%= config.bin %> state export --file - | ssh newhost autoport state import --file -',
  ];

  static override flags = {
    config: configFlag,
    file: Flags.string({
      char: 'f',
      description: 'the dump to write (a new file), or - for standard output',
      required: true,
    }),
    json: jsonFlag,
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(StateExport);
    try {
      const config = loadConfig(flags.config);
      const summary = await withExportStore(config, (store) =>
        flags.file === '-'
          ? exportState(store, process.stdout)
          : exportStateToFile(store, flags.file),
      );
      const text = flags.json
        ? `${JSON.stringify(summary, null, 2)}\n`
        : renderExport(summary, flags.file);
      (flags.file === '-' ? process.stderr : process.stdout).write(text);
    } catch (err) {
      reportCommandError(err, flags.json && flags.file !== '-');
    }
  }
}
