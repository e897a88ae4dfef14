/** Reports over state and logs: pure report functions, plus the one place that reads inputs. */
import type { Config } from '../config/types.js';
import { openAccountStore } from '../accounts/open.js';
import { leftoversReport, type LeftoversReport } from './leftovers.js';
import { progressReport, type ProgressReport } from './progress.js';
import { readReportInputs, type ReportInputs } from './read-logs.js';

export * from './view.js';
export * from './leftovers.js';
export * from './progress.js';
export * from './read-logs.js';

export interface ReportOptions {
  now?: Date;
  since?: Date;
}

/**
 * Read the store (read-only: works while the gateway owns it; the snapshot is as of its
 * last save) and the logs named by the config.
 */
export async function loadReportInputs(
  config: Pick<Config, 'state' | 'stateDir' | 'statePassword' | 'logDir' | 'domains'>,
  options: ReportOptions = {},
): Promise<ReportInputs> {
  const store = await openAccountStore(config, { readOnly: true });
  try {
    return await readReportInputs({
      store,
      stateDir: config.stateDir,
      logDir: config.logDir,
      domains: config.domains,
      now: options.now ?? new Date(),
      ...(options.since ? { since: options.since } : {}),
    });
  } finally {
    await store.close();
  }
}

export async function runLeftovers(
  config: Pick<Config, 'state' | 'stateDir' | 'statePassword' | 'logDir' | 'domains'>,
  options: ReportOptions = {},
): Promise<LeftoversReport> {
  return await leftoversReport(await loadReportInputs(config, options));
}

export async function runProgress(
  config: Pick<Config, 'state' | 'stateDir' | 'statePassword' | 'logDir' | 'domains'>,
  options: ReportOptions = {},
): Promise<ProgressReport> {
  return await progressReport(await loadReportInputs(config, options));
}
