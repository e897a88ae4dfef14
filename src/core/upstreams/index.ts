/**
 * The upstream factory the gateway is given: "log this user in at the source (or the
 * destination) over IMAP (or POP3)". Tests replace it with fault-injecting stand-ins.
 */
import type { Config } from '../config/types.js';
import { UpstreamError } from './errors.js';
import { imapLogin } from '../imap/backend.js';
import { pop3Login } from '../pop3/backend.js';
import type { ClientInfo, LoginCredentials, UpstreamSession } from './types.js';

export * from './types.js';
export { UpstreamError, toReplyError, type UpstreamErrorCode } from './errors.js';
export { imapLogin } from '../imap/backend.js';
export { pop3Login } from '../pop3/backend.js';
export {
  openConnection,
  UpstreamConnection,
  type UpstreamTimeouts,
  type ConnectOptions,
} from './connection.js';

export type Side = 'source' | 'destination';
export type LoginProtocol = 'imap' | 'pop3';

export interface LoginOptions {
  /**
   * prove the login with a command after it (default true). Needed before credentials are
   * captured (some servers accept any password at LOGIN); a password the gateway already
   * holds was proven before.
   */
  confirm?: boolean;
}

export interface UpstreamFactory {
  login(
    side: Side,
    protocol: LoginProtocol,
    creds: LoginCredentials,
    client: ClientInfo,
    opts?: LoginOptions,
  ): Promise<UpstreamSession>;
}

export interface UpstreamOptions {
  /** extra CA certificates for the backends (a private CA) */
  ca?: string | string[];
  /** send the client's address (IMAP ID / POP3 XCLIENT); default true for both sides */
  forwardClient?: Partial<Record<Side, boolean>>;
  /** the command that confirms an IMAP login (default LIST "" "") */
  confirm?: string;
}

export function makeUpstreams(
  config: () => Config,
  options: UpstreamOptions = {},
): UpstreamFactory {
  return {
    login(side, protocol, creds, client, lo = {}) {
      const c = config();
      const ep = c[side][protocol];
      if (!ep)
        return Promise.reject(
          new UpstreamError('ECONNECT', `${side}.${protocol} is not configured`),
        );
      const common = {
        label: `${side} ${protocol.toUpperCase()}`,
        timeouts: c.timeouts,
        ca: options.ca,
        forwardClient: options.forwardClient?.[side] ?? true,
      };
      return protocol === 'imap'
        ? imapLogin(ep, creds, client, {
            ...common,
            confirm: lo.confirm === false ? false : options.confirm,
          })
        : pop3Login(ep, creds, client, { ...common, confirm: lo.confirm });
    },
  };
}
