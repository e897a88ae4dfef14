/**
 * The JSON store's record of its saves and compactions: counts, timings, and failure
 * episodes. A full disk
 * is reported once per episode (onSaveError), not for every retry, and its end once
 * (onSaveRecovered); health checks and ping() read whether saves are failing now.
 */
import type { StoreStatus } from './json-store-options.js';

export interface SaveReports {
  onSaveError: (err: Error) => void;
  onSaveRecovered?: (info: { failures: number; since: Date }) => void;
}

type SaveFigures = Pick<
  StoreStatus,
  | 'saves'
  | 'lastSavedAt'
  | 'lastSaveMs'
  | 'lastError'
  | 'failures'
  | 'failingSince'
  | 'compactions'
  | 'lastCompactionMs'
  | 'lastCompactionError'
>;

export class SaveRecord {
  private saves = 0;
  private lastSavedAt: string | undefined;
  private lastSaveMs: number | undefined;
  private failures = 0;
  private failuresInEpisode = 0;
  private compactions = 0;
  private lastCompactionMs: number | undefined;
  private compactionError: Error | undefined;
  /** the error of the last save, while saves fail */
  lastError: Error | undefined;
  /** when the current run of failed saves began; undefined while saving works */
  failingSince: Date | undefined;

  constructor(private readonly reports: SaveReports) {}

  saved(ms: number): void {
    this.saves++;
    this.lastSaveMs = Math.round(ms * 10) / 10;
    this.lastSavedAt = new Date().toISOString();
    this.lastError = undefined;
    if (!this.failingSince) return;
    const info = { failures: this.failuresInEpisode, since: this.failingSince };
    this.failingSince = undefined;
    this.failuresInEpisode = 0;
    this.reports.onSaveRecovered?.(info);
  }

  failed(err: Error): void {
    this.lastError = err;
    this.failures++;
    this.failuresInEpisode++;
    if (this.failingSince) return;
    this.failingSince = new Date();
    this.reports.onSaveError(err);
  }

  compacted(ms: number): void {
    this.compactions++;
    this.lastCompactionMs = Math.round(ms * 10) / 10;
    this.compactionError = undefined;
  }

  compactionFailed(err: Error): void {
    this.compactionError = err;
  }

  figures(): SaveFigures {
    return {
      saves: this.saves,
      lastSavedAt: this.lastSavedAt,
      lastSaveMs: this.lastSaveMs,
      lastError: this.lastError?.message,
      failures: this.failures,
      failingSince: this.failingSince?.toISOString(),
      compactions: this.compactions,
      lastCompactionMs: this.lastCompactionMs,
      lastCompactionError: this.compactionError?.message,
    };
  }
}
