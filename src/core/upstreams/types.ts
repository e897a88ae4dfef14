import type { Socket } from 'node:net';
import type { TransportOptions } from '../net/options.js';

/** Who the client is, forwarded to backends that accept it. */
export interface ClientInfo {
  address: string;
  port: number;
  /** the gateway's own address the client connected to */
  localAddress: string;
  localPort: number;
  /** the session id, also in the gateway's logs */
  session: string;
}

export interface LoginCredentials {
  user: string;
  password: string;
  /** log in as `user` with the master's password (Dovecot master users); password unused then */
  master?: { user: string; password: string };
}

/** A logged-in backend connection, detached for the splice. */
export interface UpstreamSession {
  socket: Socket;
  /** bytes the backend sent beyond the login exchange: forwarded first */
  buffered: Buffer;
  /**
   * set for sockets that read through onread (no 'data' events): the splice passes its
   * sink here; the sink returns false to pause the socket
   */
  reader?: (sink: (chunk: Buffer) => boolean) => void;
  /** the backend's post-login capabilities, when it said them (IMAP) */
  capabilities?: string[];
  /** the text of the backend's tagged OK / +OK to the login, for the client */
  loginText: string;
}

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

/** "log this user in at the source (or the destination) over IMAP (or POP3)" */
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

export interface UpstreamTimeouts {
  connectMs: number;
  greetingMs: number;
  commandMs: number;
}

/** How the gateway reaches a backend: the transport's options with its three timeouts. */
export interface ConnectOptions extends TransportOptions {
  timeouts: UpstreamTimeouts;
}
