import { Command, Flags } from '@oclif/core';
import { reportCommandError } from '../../core/cli/errors.js';
import { loadConfig } from '../../core/config/index.js';
import {
  formatReport,
  parseSince,
  progressView,
  runProgress,
  type ReportFormat,
} from '../../core/reports/index.js';

export default class ReportProgress extends Command {
  static override summary =
    'How far the migration is: accounts by state, mail moved, failures, SMTP still going to the source.';

  static override description = [
    'Accounts by state (now); messages and bytes moved and the rate while copying (from the copy ledger); failed accounts grouped by cause and failed messages by reason; and per day how many messages the gateway relayed to the source and to the destination, with the share still going to the source: the number that must reach zero before the source can be switched off.',
    'Reads the state without taking its lock, so it works while `autoport proxy` runs. --since limits the ledger and the relay log to a window (account states are always current).',
  ].join('\n\n');

  static override examples = [
    '<%= config.bin %> report progress',
    '<%= config.bin %> report progress --since 2026-11-01 --csv',
    "<%= config.bin %> report progress --json | jq '.smtpByDay'",
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
      description: 'print the report as CSV (RFC 4180): section,key,metric,value',
      default: false,
      exclusive: ['json'],
    }),
    since: Flags.string({
      description: 'only log entries from this time on: an ISO date (UTC) or a span like 7d, 12h',
    }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(ReportProgress);
    try {
      const config = loadConfig(flags.config);
      const now = new Date();
      const since = flags.since ? parseSince(flags.since, now) : undefined;
      const result = await runProgress(config, { now, ...(since ? { since } : {}) });
      const format: ReportFormat = flags.json ? 'json' : flags.csv ? 'csv' : 'table';
      process.stdout.write(
        formatReport(result, progressView, format, process.stdout.columns || 120),
      );
    } catch (err) {
      reportCommandError(err, flags.json);
    }
  }
}
