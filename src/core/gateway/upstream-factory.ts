/**
 * The upstream factory the gateway is given: "log this user in at the source (or the
 * destination) over IMAP (or POP3)". Tests replace it with fault-injecting stand-ins.
 */
import type { Config } from '../config/types.js';
import { imapLogin } from '../imap/backend.js';
import { pop3Login } from '../pop3/backend.js';
import { UpstreamError } from '../upstreams/errors.js';
import type { UpstreamFactory, UpstreamOptions } from '../upstreams/types.js';

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
