import type { Socket } from 'node:net';

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
