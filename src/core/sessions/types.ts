/**
 * What a front-end (IMAP, POP3) needs from the gateway: a login service that carries out
 * the routing decision, and a place to register spliced sessions. Passed in, so tests can
 * drive a front-end with a stand-in gateway (style.md habit 8).
 */
import type { SecureContext } from 'node:tls';
import type { EventBus, SessionProtocol } from '../bus.js';
import type { PreauthLimits } from '../limits.js';
import type { Logger } from '../log/logger.js';
import type { Outcome } from '../replies.js';
import type { ClientInfo, UpstreamSession } from '../upstreams/types.js';
import type { Splice } from './splice.js';

export interface ListenerInfo {
  /** config key: imap, imaps, pop3, pop3s */
  name: string;
  protocol: 'imap' | 'pop3';
  /** TLS from the first byte (993, 995) */
  implicitTls: boolean;
  /** the certificate for STARTTLS/STLS; undefined = not offered */
  secureContext(): SecureContext | undefined;
  /** may a client log in without TLS here (RFC 3501 6.2.3 LOGINDISABLED, RFC 2595 2.2)? */
  plaintextLogin(client: ClientInfo): boolean;
}

export interface SessionInfo {
  id: string;
  client: ClientInfo;
  listener: ListenerInfo;
}

export interface LoginRequest {
  protocol: 'imap' | 'pop3';
  user: string;
  password: string;
  /** LOGIN, PLAIN, USER, ... for the log */
  mechanism: string;
}

export type LoginResult =
  | {
      ok: true;
      user: string;
      target: 'source' | 'destination';
      upstream: UpstreamSession;
      /** ends the gateway's "login in progress" mark; called once the session is tracked or dropped */
      release(): void;
    }
  /** `close`: the front-end closes the connection after the reply (brakes, limits) */
  | { ok: false; outcome: Outcome; close: boolean };

/** gives back what was taken (a connection-limit slot); calling it again does nothing */
export type Release = () => void;

export interface FrontendDeps {
  limits: PreauthLimits;
  /** idle timeout of a spliced session */
  spliceIdleMs: number;
  bus: EventBus;
  logger: Logger;
  login(req: LoginRequest, session: SessionInfo): Promise<LoginResult>;
  /** a session is spliced for `user`: register it (for kicks and "is the user online"); returns unregister */
  track(
    user: string,
    target: 'source' | 'destination',
    session: SessionInfo,
    splice: Splice,
  ): () => void;
  /** a moved account's destination UIDL -> source UIDL map (POP3 UIDL continuity), if any */
  pop3Uidls?(user: string): Promise<ReadonlyMap<string, string> | undefined>;
  /** the gateway is stopping: greet nobody, refuse logins */
  stopping(): boolean;
}

export type { SessionProtocol };
