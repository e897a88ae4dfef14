/**
 * What a message relayed on one leg leaves behind, whatever the backend answered: its line
 * in the relay log (relay-log.ts) and its smtp.message event for the metrics and monitor.
 */
import type { MessageFacts } from './message-facts.js';
import type { Side } from './recipients.js';
import type { Recipients, SessionClient, SessionDeps } from './session-types.js';
import { replyLine, type SmtpReply } from './smtp-client.js';

export interface Delivery {
  client: SessionClient;
  /** the authenticated user on submission */
  user: string | undefined;
  from: string;
  side: Side;
  recipients: Recipients;
  /** host:port of the backend */
  backend: string;
  /** the backend's reply to the end of DATA */
  reply: SmtpReply;
  accepted: boolean;
  bytes: number;
  bareLineEndings: number;
  facts: MessageFacts;
  /** Date.now() when DATA began */
  started: number;
}

export function recordDelivery(deps: Pick<SessionDeps, 'relayLog' | 'bus'>, d: Delivery): void {
  deps.relayLog.record({
    time: new Date().toISOString(),
    session: d.client.id,
    listener: d.client.listener,
    client: d.client.address,
    helo: d.client.helo,
    user: d.user,
    from: d.from,
    recipients: d.recipients,
    size: d.bytes,
    ...d.facts,
    route: d.side,
    backend: d.backend,
    reply: replyLine(d.reply),
    accepted: d.accepted,
    ...(d.bareLineEndings > 0 ? { bareLineEndings: d.bareLineEndings } : {}),
    durationMs: Date.now() - d.started,
  });
  deps.bus.emit({
    type: 'smtp.message',
    at: new Date().toISOString(),
    session: d.client.id,
    listener: d.client.listener,
    route: d.side,
    code: d.reply.code,
    accepted: d.accepted,
    recipients: d.recipients.length,
    bytes: d.bytes,
    durationMs: Date.now() - d.started,
  });
}
