import { Command } from '@oclif/core';
import { printReport, reportFlags } from '../../cli/report-command.js';
import { progressView, runProgress } from '../../core/reports/index.js';

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

  static override flags = reportFlags({
    csv: 'print the report as CSV (RFC 4180): section,key,metric,value',
    since: 'only log entries from this time on: an ISO date (UTC) or a span like 7d, 12h',
  });

  async run(): Promise<void> {
    const { flags } = await this.parse(ReportProgress);
    await printReport(flags, runProgress, progressView);
  }
}
