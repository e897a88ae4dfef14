import { Command } from '@oclif/core';
import { printReport, reportFlags } from '../../cli/report-command.js';
import { leftoversView, runLeftovers } from '../../core/reports/index.js';

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

  static override flags = reportFlags({
    csv: 'print the rows as CSV (RFC 4180)',
    since: 'count mail from this time on: an ISO date (UTC) or a span like 7d, 12h',
  });

  async run(): Promise<void> {
    const { flags } = await this.parse(ReportLeftovers);
    await printReport(flags, runLeftovers, leftoversView);
  }
}
