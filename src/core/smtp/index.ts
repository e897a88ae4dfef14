/**
 * The SMTP front end: port 25 (mail from the world, routed per recipient by account
 * state), submission 587/465 (AUTH at the account's home, relayed through its submission
 * service), stream-through relaying and the relay log. See server.ts, session.ts, recipients.ts.
 */
export {
  startSmtpListener,
  startSmtpListeners,
  type RunningSmtpListener,
  type SmtpFrontendDeps,
} from './server.js';
export { DEFAULT_SMTP_LIMITS, resolveSmtpLimits, type SmtpLimits } from './limits.js';
export {
  openRelayLog,
  relayLogOf,
  readRelayLog,
  isRelayLogEntry,
  RELAY_LOG_FILE,
  type RelayLog,
  type RelayLogEntry,
  type AutoHint,
} from './relay-log.js';
export { messageFacts, parseHeaders, HeaderCollector, type MessageFacts } from './message-facts.js';
export {
  routeRecipient,
  routeSubmissionRecipient,
  joinTransaction,
  accountKeys,
  isLocalDomain,
  splitAddress,
  type RecipientRoute,
  type SubmissionRoute,
  type Side,
} from './recipients.js';
export { DataScanner, relayedData, type BareLineEndingPolicy } from './smuggling.js';
export {
  GatewaySmtpServer,
  scannerOf,
  carriesEnhancedCode,
  type WirePolicy,
} from './smtp-server-overrides.js';
export {
  openBackend,
  xclientCommand,
  enhancedReplyText,
  type BackendOptions,
  type SmtpReply,
} from './smtp-client.js';
export { Relay, relayData, type DataResult, type LegResult, type MailParams } from './relay.js';
export { BackendLease } from './lease.js';
export { authenticate, type AuthResult, type SubmissionLogin } from './submission.js';
export { SmtpSession, type SmtpListenerName } from './session.js';
export { SmtpReplyError, outcomeError, passThrough } from './reply-error.js';
