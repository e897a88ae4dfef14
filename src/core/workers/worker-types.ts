/** What the worker pool is given and what it runs (worker-pool.ts). */
import type { EventBus, TransferProgress } from '../bus.js';
import type { GatewayLimits } from '../limits.js';
import type { Logger } from '../log/logger.js';
import type { Keyring } from '../state/crypto.js';
import type { StateStore, TransferLock } from '../state/types.js';
import type { SessionRegistry } from '../sessions/registry.js';
import type { SweepFn } from './late-mail.js';

export interface MigrateOutcome {
  ok: boolean;
  detail?: string;
  /** the switch, when the move got that far */
  lock?: TransferLock;
}

export interface MigrateHooks {
  onProgress?: (p: TransferProgress) => void;
  /** the account was just locked for the switch: close its source sessions now */
  onLocked?: () => void | Promise<void>;
}

/** Moves one account (the copy engine's migrateAccount, wrapped by the gateway). */
export type MigrateFn = (
  req: { address: string; password: string },
  signal: AbortSignal,
  hooks?: MigrateHooks,
) => Promise<MigrateOutcome>;

export interface WorkerDeps {
  /** its `cluster` keeps a move or sweep on one node at a time (state/types.ts Cluster) */
  store: StateStore;
  keyring: Keyring;
  bus: EventBus;
  logger: Logger;
  sessions: SessionRegistry;
  migrate: MigrateFn;
  /** late-mail sweeps after a switch (none without it) */
  sweep?: SweepFn;
  concurrency: () => number;
  limits: GatewayLimits;
  /**
   * the cluster's lease (config node.leaseSeconds; default DEFAULT_CLUSTER_TIMING's): moves
   * a dead node left (orphans) are looked for every half lease (not more often than
   * workerPollMs), and a node that lost the cluster starts nothing for one lease
   */
  leaseMs?: number;
  /** overrides the orphans phase's period (tests) */
  orphansEveryMs?: number;
  now?: () => number;
}

/** Why the pool aborted a move: never the account's fault, so never counted as a failure. */
export type AbortReason = 'stop' | 'timeout' | 'excluded' | 'lost';

export interface Running {
  controller: AbortController;
  done: Promise<MigrateOutcome>;
  /** why we aborted it, if we did */
  aborted?: AbortReason;
}
