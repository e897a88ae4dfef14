/**
 * The types of an SMTP session (session.ts): its client, what it is given, and the
 * transaction it holds between MAIL and the end of DATA.
 */
import type { EventBus } from '../bus.js';
import type { Endpoint } from '../config/endpoint.js';
import type { Config } from '../config/types.js';
import type { Logger } from '../log/logger.js';
import type { RouteReason } from '../routing/decide.js';
import type { AccountState } from '../state/types.js';
import type { SmtpLimits } from './limits.js';
import type { Side } from './recipients.js';
import type { MailParams, Relay } from './relay.js';
import type { RelayLog } from './relay-log.js';
import type { SmtpReplyError } from './reply-error.js';

export type SmtpListenerName = 'smtp' | 'submission' | 'submissions';

export interface SessionDeps {
  config: () => Config;
  stateOf(account: string): Promise<AccountState | undefined>;
  relayLog: RelayLog;
  bus: EventBus;
  logger: Logger;
  limits: SmtpLimits;
  /** connect to a backend for this client (EHLO, TLS, XCLIENT, AUTH); throws UpstreamError */
  openRelay(
    side: Side,
    endpoint: Endpoint,
    client: SessionClient,
    auth?: { user: string; password: string },
  ): Promise<Relay>;
}

export interface SessionClient {
  id: string;
  listener: SmtpListenerName;
  address: string;
  port: number;
  helo?: string;
}

export type Recipients = Array<{ address: string; reason: RouteReason }>;

/** One backend's part of a transaction. */
export interface Leg {
  side: Side | undefined;
  recipients: Recipients;
  /** the backend accepted MAIL FROM for this transaction */
  mailSent: boolean;
}

export interface Transaction extends Leg {
  from: string;
  params: MailParams;
  /** submission: the recipients delivered straight to their mailbox's side, not via the home */
  direct?: Leg;
  /** a backend failed during the transaction: every later RCPT and the DATA get this 4xx */
  failed?: SmtpReplyError;
}
