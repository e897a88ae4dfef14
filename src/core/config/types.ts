import type { Endpoint } from './endpoint.js';

/** The validated, resolved configuration (secrets read from files/env, paths absolute). */
export interface ProvisionConfig {
  kind: 'passwd-file' | 'command' | 'none';
  /** passwd-file: path of the Dovecot passwd-file */
  path?: string;
  /** passwd-file: password scheme, e.g. SHA512-CRYPT, ARGON2ID, BLF-CRYPT */
  scheme?: string;
  /** passwd-file: extra fields for new lines (uid:gid:home:...), Dovecot passwd-file format */
  uid?: string;
  gid?: string;
  home?: string;
  /** command: argv, the address is appended; the password is written to stdin */
  command?: string[];
}

export interface MasterUser {
  user: string;
  /** resolved secret (from passwordFile or passwordEnv); never logged */
  password: string;
  /** Dovecot's auth_master_user_separator (default "*") */
  separator: string;
}

export interface ServerSide {
  imap?: Endpoint;
  pop3?: Endpoint;
  smtp?: Endpoint;
  submission?: Endpoint;
}

export interface ListenAddress {
  host: string;
  port: number;
}

export interface Config {
  /** absolute path of the loaded file */
  file: string;
  source: ServerSide & { useImap: boolean };
  destination: ServerSide & { provision: ProvisionConfig; master?: MasterUser };
  listen: Partial<
    Record<
      'imap' | 'imaps' | 'pop3' | 'pop3s' | 'smtp' | 'submission' | 'submissions',
      ListenAddress
    >
  >;
  /**
   * listeners behind a load balancer that sends a PROXY protocol header (v1 or v2); only
   * connections from `trusted` (addresses or CIDR blocks) are taken there
   */
  proxyProtocol?: { listeners: Array<keyof Config['listen']>; trusted: string[] };
  /**
   * `trusted`: client addresses or CIDR blocks (after PROXY protocol) exempt from the
   * per-address login brakes, like Dovecot's login_trusted_networks (login/brakes.ts)
   */
  brakes?: { trusted: string[] };
  tls?: { cert: string; key: string };
  domains: string[];
  strategy: 'proxy' | 'immediate';
  /** the JSON state file (absolute), or a postgresql:// URL without its password */
  state: string;
  /**
   * the state folder: the transfer ledger, side files, and the default logDir and control
   * socket; default the state file's folder, or the config's folder for a URL
   */
  stateDir: string;
  /** the PostgreSQL password (statePasswordFile or statePasswordEnv); never logged */
  statePassword?: string;
  /** this gateway among several sharing a PostgreSQL state (state/pg-cluster.ts) */
  node?: { name?: string; heartbeatSeconds: number; leaseSeconds: number };
  keyFile: string;
  logDir: string;
  transfer: {
    /** parallel IMAP connections per side for one account */
    connections: number;
    /** accounts moved at once by `migrate --all` and the proxy's worker pool */
    concurrency: number;
  };
  gateway?: {
    /** plain-text logins before TLS: always, loopback only, or never (default: loopback when tls is set) */
    plaintextLogin?: 'always' | 'loopback' | 'never';
    /** log in to the destination as the user (captured password) or as destination.master */
    destinationLogin: 'user' | 'master';
    /** pass the client address to each backend (IMAP ID x-originating-ip, POP3/SMTP XCLIENT) */
    forwardClient: { source: boolean; destination: boolean };
  };
  smtp?: {
    /** largest message the SMTP listeners accept (SIZE, RFC 1870) */
    maxMessageBytes: number;
  };
  control?: {
    /** Unix socket of the running proxy (default: autoport.sock beside the state file) */
    socket: string;
    /** the HTTP endpoint for /metrics and /healthz; false: none */
    metrics: ListenAddress | false;
  };
  timeouts: { connectMs: number; greetingMs: number; commandMs: number; idleMs: number };
  /** things that work but should be fixed (e.g. a password file readable by others) */
  warnings?: string[];
}
