/**
 * What a transfer of one account is given (store, ledger, provisioner, hooks) and how it
 * reaches both servers. Shared by the IMAP path (migrate-account.ts), the POP3 fallback
 * (migrate-pop3.ts) and the dry run, so none of them imports another.
 */
import type { ImapFlow } from 'imapflow';
import type { Config } from '../config/types.js';
import type { Provisioner } from '../provision/types.js';
import type { StateStore } from '../state/types.js';
import type { SideAccess } from './copy/connect.js';
import type { CopyTuning } from './copy/folder-copy.js';
import type { SessionTimeouts } from './copy/session-types.js';
import type { Ledger } from './copy/ledger.js';
import { createFolders, listSide, planFolders } from './folders/index.js';
import type { CreateFoldersResult } from './folders/create.js';
import type { PlanSide } from './folders/plan.js';
import type { MigrateEvent } from './result.js';
import type { FolderPlan } from './types.js';

export interface FolderOps {
  list(client: ImapFlow): Promise<PlanSide>;
  plan(src: PlanSide, dst: PlanSide): FolderPlan;
  create(client: ImapFlow, plan: FolderPlan): Promise<CreateFoldersResult>;
}

export const DEFAULT_FOLDER_OPS: FolderOps = {
  list: listSide,
  plan: (s, d) => planFolders(s, d),
  create: createFolders,
};

/**
 * When the pre-copy stops and the switch starts: after a pass that moved fewer messages
 * and fewer bytes than these (what is left then fits in a short lock), or after maxPasses
 * (mail arriving faster than it is copied must not keep the account out of reach forever).
 */
export interface PrecopyLimits {
  maxPasses: number;
  settleMessages: number;
  settleBytes: number;
}

export const DEFAULT_PRECOPY: PrecopyLimits = {
  maxPasses: 5,
  settleMessages: 50,
  settleBytes: 16 * 1024 * 1024,
};

export interface MigrateDeps {
  config: Config;
  store: StateStore;
  ledger: Ledger;
  /** creates the account on the destination; omit to skip provisioning */
  provisioner?: Provisioner;
  folders?: FolderOps;
  onEvent?: (e: MigrateEvent) => void;
  /**
   * Called once the account is locked (state transferring) for the switch, before its
   * final pass: the gateway closes the sessions still open to the source here.
   */
  onLocked?: () => void | Promise<void>;
  signal?: AbortSignal;
  tuning?: Partial<CopyTuning>;
  precopy?: Partial<PrecopyLimits>;
  /** hash again on the destination: what this run wrote (default), everything, or nothing */
  verify?: 'written' | 'all' | 'none';
  /** copy again what is missing on the destination, also what the user deleted there after
   * the account was migrated (see handover.ts) */
  repair?: boolean;
  now?: () => Date;
}

export interface MigrateRequest {
  address: string;
  /** the user's password at the source (and, once provisioned, at the destination) */
  password: string;
}

export function timeoutsOf(config: Config): SessionTimeouts {
  return {
    connectMs: config.timeouts.connectMs,
    greetingMs: config.timeouts.greetingMs,
    commandMs: config.timeouts.commandMs,
  };
}

export function sides(
  config: Config,
  req: MigrateRequest,
): { source: SideAccess; destination: SideAccess } {
  if (!config.source.imap) throw new Error('source.imap is required for an IMAP transfer');
  return {
    source: {
      label: 'source',
      endpoint: config.source.imap,
      credentials: { user: req.address, password: req.password },
    },
    destination: destinationAccess(config, req),
  };
}

/** The destination as the copy logs in to it: as the user, or as the master user for the user. */
export function destinationAccess(config: Config, req: MigrateRequest): SideAccess {
  if (!config.destination.imap) throw new Error('destination.imap is required for a transfer');
  const master = config.destination.master;
  return {
    label: 'destination',
    endpoint: config.destination.imap,
    credentials: master
      ? {
          user: req.address,
          password: req.password,
          master: { user: master.user, password: master.password, separator: master.separator },
        }
      : { user: req.address, password: req.password },
  };
}
