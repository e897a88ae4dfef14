/** How hard the copier pushes the servers, and how much memory it may hold while it does. */

export interface CopyTuning {
  /** received bytes waiting for the destination before the source is paused */
  maxQueueBytes: number;
  maxBatchMessages: number;
  maxBatchBytes: number;
  maxInFlight: number;
  maxInFlightBytes: number;
  incremental: 'auto' | 'listing';
}

/**
 * Measured on Dovecot 2.3 (bench/transfer.ts): a MULTIAPPEND of a few hundred messages
 * and several of them in flight keep the destination busy; memory is bounded by the two
 * byte budgets (shared by all connection pairs of an account) plus spilled large messages.
 */
export const DEFAULT_TUNING: CopyTuning = {
  maxQueueBytes: 32 * 1024 * 1024,
  maxBatchMessages: 200,
  maxBatchBytes: 8 * 1024 * 1024,
  maxInFlight: 8,
  maxInFlightBytes: 32 * 1024 * 1024,
  incremental: 'auto',
};
