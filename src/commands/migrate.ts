import { Args, Command, Flags } from '@oclif/core';
import { reportCommandError } from '../cli/errors.js';
import { readPasswordFromStdin } from '../cli/stdin.js';
import { withInterrupt } from '../cli/interrupt.js';
import { styleFor } from '../cli/style.js';
import { accountLine, progressView, renderDryRun } from '../cli/render-migrate.js';
import { runDryRun, runMigrate, type MigrateRunOptions } from '../core/transfer/run-migrate.js';
import { loadConfig } from '../core/config/index.js';
import { OperatorError } from '../core/errors.js';
import { configFlag, jsonFlag } from '../cli/flags.js';
export default class Migrate extends Command {
  static override summary = 'Move one account (or every captured one) to the destination now.';

  static override description = [
    'Provisions the account on the destination with the same password, copies every folder with every message (byte for byte, with flags, keywords and received dates) and the subscriptions, verifies the result and records it in the state. Running it again is always safe: it resumes after an interruption and later copies only what changed (new mail, flag changes, expunges).',
    'A folder recreated on the destination is filled again. Messages missing from the destination are copied again until the account is migrated; after that they count as deleted by the user and stay deleted, unless --repair is given.',
    'The password comes from the state (captured by the gateway), or from standard input with --password-stdin. Every message ends in the ledger (ledger.jsonl beside the state) as copied, skipped or failed with the reason. Exit status 1 when anything was not copied.',
  ].join('\n\n');

  static override examples = [
    '<%= config.bin %> migrate alice@example.org',
    'printf \'%s\' "$PASSWORD" | <%= config.bin %> migrate alice@example.org --password-stdin',
    '<%= config.bin %> migrate alice@example.org --dry-run',
    '<%= config.bin %> migrate --all --concurrency 4 --json',
  ];

  static override args = {
    address: Args.string({
      description: 'the account to move (as the user logs in)',
      required: false,
    }),
  };

  static override flags = {
    config: configFlag,
    all: Flags.boolean({ description: 'move every captured account', default: false }),
    concurrency: Flags.integer({
      description: 'accounts moved at once with --all (default: transfer.concurrency)',
      min: 1,
    }),
    'password-stdin': Flags.boolean({
      description: 'read the password from standard input',
      default: false,
    }),
    'dry-run': Flags.boolean({
      description: 'show the plan (folders, counts, sizes, problems, ETA); change nothing',
      default: false,
    }),
    verify: Flags.string({
      description: 'hash again on the destination: what this run wrote, all, or none',
      options: ['written', 'all', 'none'],
      default: 'written',
    }),
    repair: Flags.boolean({
      description:
        'copy again every message missing on the destination, also those deleted there after the account was migrated',
      default: false,
    }),
    json: jsonFlag,
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Migrate);
    try {
      if (!args.address === !flags.all)
        throw new OperatorError(
          'give one account address or --all',
          'autoport migrate alice@example.org, or autoport migrate --all',
          'EUSAGE',
        );
      if (flags.all && (flags['password-stdin'] || flags['dry-run'])) {
        throw new OperatorError(
          '--password-stdin and --dry-run work for one account only',
          'name the account: autoport migrate alice@example.org --dry-run',
          'EUSAGE',
        );
      }
      const config = loadConfig(flags.config);
      const password = flags['password-stdin'] ? await readPasswordFromStdin('migrate') : undefined;
      if (flags['dry-run']) {
        const result = await runDryRun(config, args.address as string, password);
        this.log(flags.json ? JSON.stringify(result, null, 2) : renderDryRun(result).trimEnd());
        return;
      }
      const view = flags.json
        ? null
        : progressView(
            (s) => void process.stdout.write(s),
            Boolean(process.stdout.isTTY),
            process.stdout.columns || 100,
            Date.now,
            styleFor(process.stdout),
          );
      try {
        const run = await withInterrupt((signal) =>
          runMigrate(config, {
            address: args.address,
            all: flags.all,
            password,
            concurrency: flags.concurrency,
            verify: flags.verify as MigrateRunOptions['verify'],
            repair: flags.repair,
            onEvent: (e) => view?.onEvent(e),
            warn: (line) => void process.stderr.write(`${line}\n`),
            signal,
          }),
        );
        view?.stop();
        if (flags.json) this.log(JSON.stringify(run.result, null, 2));
        else if (!view && run.kind === 'one')
          this.log(accountLine(run.result, styleFor(process.stdout)));
        if (!run.ok) process.exitCode = 1;
      } finally {
        view?.stop();
      }
    } catch (err) {
      reportCommandError(err, flags.json);
    }
  }
}
