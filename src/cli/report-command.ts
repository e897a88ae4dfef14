/**
 * What the report commands (report leftovers, report progress) share: the --config,
 * --json, --csv and --since flags, and the run itself: load the config, read the state
 * and logs from --since on, print the report as a table, JSON or CSV. The helper lives
 * here and not under src/commands because oclif loads every file there as a command.
 */
import { Flags } from '@oclif/core';
import { loadConfig } from '../core/config/index.js';
import type { Config } from '../core/config/types.js';
import { parseSince, type ReportOptions, type ReportView } from '../core/reports/index.js';
import { formatReport, type ReportFormat } from './render-report.js';
import { styleFor } from './style.js';
import { reportCommandError } from './errors.js';
import { configFlag } from './flags.js';

/** The flags of a report command; only the help texts of --csv and --since differ. */
export function reportFlags(help: { csv: string; since: string }) {
  return {
    config: configFlag,
    json: Flags.boolean({
      description: 'print the report as JSON',
      default: false,
      exclusive: ['csv'],
    }),
    csv: Flags.boolean({
      description: help.csv,
      default: false,
      exclusive: ['json'],
    }),
    since: Flags.string({ description: help.since }),
  };
}

/**
 * Build the report with `run` and write it to stdout in the format the flags ask for; an
 * OperatorError (bad config, bad --since, unreadable state) is reported with exit code 1.
 */
export async function printReport<R>(
  flags: { config?: string | undefined; json: boolean; csv: boolean; since?: string | undefined },
  run: (config: Config, options: ReportOptions) => Promise<R>,
  view: ReportView<R>,
): Promise<void> {
  try {
    const config = loadConfig(flags.config);
    const now = new Date();
    const since = flags.since ? parseSince(flags.since, now) : undefined;
    const result = await run(config, { now, ...(since ? { since } : {}) });
    const format: ReportFormat = flags.json ? 'json' : flags.csv ? 'csv' : 'table';
    process.stdout.write(
      formatReport(
        result,
        view,
        format,
        process.stdout.columns || 120,
        styleFor(process.stdout, flags.json),
      ),
    );
  } catch (err) {
    reportCommandError(err, flags.json);
  }
}
