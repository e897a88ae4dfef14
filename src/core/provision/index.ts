/**
 * Create the account on the destination before copying (issue 3, step 1):
 * passwd-file (Dovecot), command (the administrator's own script) or none.
 */
import type { ProvisionConfig } from '../config/types.js';
import { makeCommandProvisioner } from './command.js';
import { assertSupportedScheme, ProvisionError, type HashDeps } from './hash.js';
import { makeNoneProvisioner } from './none.js';
import { makePasswdFileProvisioner } from './passwd-file.js';
import type { Provisioner } from './types.js';

export type { Provisioner } from './types.js';
export {
  ProvisionError,
  hashPassword,
  shaCrypt,
  verifyShaCrypt,
  SUPPORTED_SCHEMES,
} from './hash.js';
export { waitForLogin, type WaitForLoginOptions, type WaitForLoginResult } from './wait.js';
export { upsertPasswdLine } from './passwd-file.js';

export interface ProvisionerDeps extends HashDeps {
  /** for kind command (default 60 s) */
  commandTimeoutMs?: number;
  /** for kind passwd-file: how long to wait for the lock (default 10 s) */
  lockTimeoutMs?: number;
}

/** Throws ProvisionError (config = true) when the configuration cannot work. */
export function makeProvisioner(config: ProvisionConfig, deps: ProvisionerDeps = {}): Provisioner {
  switch (config.kind) {
    case 'none':
      return makeNoneProvisioner();
    case 'command':
      return makeCommandProvisioner({
        command: config.command ?? [],
        timeoutMs: deps.commandTimeoutMs,
      });
    case 'passwd-file': {
      if (!config.path)
        throw new ProvisionError(
          'provision.path (the Dovecot passwd-file) is required for kind passwd-file',
          true,
        );
      const scheme = config.scheme ?? 'SHA512-CRYPT';
      assertSupportedScheme(scheme);
      return makePasswdFileProvisioner({
        path: config.path,
        scheme,
        uid: config.uid,
        gid: config.gid,
        home: config.home,
        doveadm: deps.doveadm,
        lockTimeoutMs: deps.lockTimeoutMs,
        doveadmTimeoutMs: deps.doveadmTimeoutMs,
      });
    }
    default: {
      const kind: never = config.kind;
      throw new ProvisionError(
        `unknown provision kind "${String(kind)}"; use passwd-file, command or none`,
        true,
      );
    }
  }
}
