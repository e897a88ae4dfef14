import { Command, Flags } from '@oclif/core';
import { reportCommandError } from '../../core/cli/errors.js';
import { loadConfig } from '../../core/config/index.js';
import {
  formatReport,
  leftoversView,
  parseSince,
  runLeftovers,
  type ReportFormat,
} from '../../core/reports/index.js';

export default class ReportLeftovers extends Command {
  static override summary =
    'What still depends on the source: accounts not migrated and addresses that only receive mail.';

  static override description = [
    'Lists every account that is not migrated (failed with the cause, captured and waiting, being moved, excluded, never logged in although imported with `autoport accounts import`), and every address that received mail through the source but never logged in: aliases, lists, forwards and auto-responders that must be recreated on the destination by hand. Each row has the mail count, first and last message, automatic-mail hints (Auto-Submitted, Precedence, List-Id, auto-replies, null sender) from the SMTP relay log, and a suggested action.',
    'Reads the state without taking its lock, so it works while `autoport proxy` runs (it shows the state as of the last save). --since limits the mail counted to a window.',
  ].join('\n\n');

  static override examples = [
    '<%= config.bin %> report leftovers',
    '<%= config.bin %> report leftovers --since 7d --csv > leftovers.csv',
    '<%= config.bin %> report leftovers --json | jq \'.rows[] | select(.status == "mail-only")\'',
  ];

  static override flags = {
    config: Flags.string({
      char: 'c',
      description: 'config file (default: $AUTOPORT_CONFIG or /etc/autoport/autoport.yaml)',
    }),
    json: Flags.boolean({
      description: 'print the report as JSON',
      default: false,
      exclusive: ['csv'],
    }),
    csv: Flags.boolean({
      description: 'print the rows as CSV (RFC 4180)',
      default: false,
      exclusive: ['json'],
    }),
    since: Flags.string({
      description: 'count mail from this time on: an ISO date (UTC) or a span like 7d, 12h',
    }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(ReportLeftovers);
    try {
      const config = loadConfig(flags.config);
      const now = new Date();
      const since = flags.since ? parseSince(flags.since, now) : undefined;
      const result = await runLeftovers(config, { now, ...(since ? { since } : {}) });
      const format: ReportFormat = flags.json ? 'json' : flags.csv ? 'csv' : 'table';
      process.stdout.write(
        formatReport(result, leftoversView, format, process.stdout.columns || 120),
      );
    } catch (err) {
      reportCommandError(err, flags.json);
    }
  }
}
