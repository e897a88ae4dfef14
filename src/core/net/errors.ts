/**
 * The one error of the transport to mail servers. `code` says what went wrong at the
 * connection level; `detail` carries what the callers need to word it their own way
 * (the gateway's log, `check`'s hints, the copier's retry decision). The original error
 * (an errno, an OpenSSL reason) is the `cause`.
 */
export type NetErrorCode =
  /** no TCP connection (refused, unreachable, name not found) */
  | 'ECONNECT'
  /** connect, handshake, a read or a whole reply took longer than allowed */
  | 'ETIMEOUT'
  /** the TLS handshake failed, or TLS was asked for and is not possible */
  | 'ETLS'
  /** the server sent bytes after its STARTTLS/STLS answer, before the handshake */
  | 'EINJECTION'
  /** the connection ended (by the server, a reset, or by us) */
  | 'ECLOSED'
  /** a line or a whole reply over its cap */
  | 'ETOOLONG'
  /** the server said something the protocol does not allow */
  | 'EPROTOCOL';

export interface NetErrorDetail {
  /** where it happened: opening the TCP link, the TLS handshake, or reading */
  phase?: 'connect' | 'handshake' | 'read';
  /** what we waited for ("a greeting", "the reply to LOGIN") */
  what?: string;
  /** the limit that was hit: milliseconds or bytes */
  limit?: number;
  /** bytes involved (read ahead after STARTTLS, or the length read so far) */
  bytes?: number;
  cause?: unknown;
}

export class NetError<C extends string = NetErrorCode> extends Error {
  override readonly name: string = 'NetError';
  constructor(
    readonly code: C,
    message: string,
    readonly detail: NetErrorDetail = {},
  ) {
    super(message, detail.cause === undefined ? undefined : { cause: detail.cause });
  }

  /** the errno or OpenSSL code of the cause (ECONNREFUSED, ERR_SSL_...), when there is one */
  get causeCode(): string | undefined {
    return (this.cause as NodeJS.ErrnoException | undefined)?.code;
  }
}
