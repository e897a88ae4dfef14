import type { ProvisionConfig } from '../config/types.js';

/** Creates the account on the destination with the user's own password. */
export interface Provisioner {
  readonly kind: ProvisionConfig['kind'];
  /**
   * Create the account or set its password. Idempotent. A Dovecot passwd-file is
   * re-read about once a second, so follow this with `waitForLogin`.
   */
  provision(address: string, password: string): Promise<void>;
}
