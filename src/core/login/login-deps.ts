/** What the IMAP/POP3 login service is given (login-service.ts). */
import type { EventBus } from '../bus.js';
import type { Config } from '../config/types.js';
import type { Logger } from '../log/logger.js';
import type { SessionRegistry } from '../sessions/registry.js';
import type { Keyring } from '../state/crypto.js';
import type { StateStore } from '../state/types.js';
import type { UpstreamFactory } from '../upstreams/types.js';
import type { Brakes } from './brakes.js';

export type TransferNowResult = 'migrated' | 'timeout' | 'failed' | 'busy';

export interface LoginDeps {
  config: () => Config;
  store: StateStore;
  keyring: Keyring;
  upstreams: UpstreamFactory;
  brakes: Brakes;
  bus: EventBus;
  logger: Logger;
  sessions: SessionRegistry;
  /** how the gateway logs in at the destination: as the user, or as the master user */
  destinationLogin: 'user' | 'master';
  /** strategy immediate: move the account now, within `waitMs` */
  transferNow?: (address: string, password: string, waitMs: number) => Promise<TransferNowResult>;
  immediateWaitMs: number;
  now?: () => Date;
}
