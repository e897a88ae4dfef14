/** How a Transport connects and reads; every field but the connect timeout has a default. */
export interface TransportTimeouts {
  connectMs: number;
  /** the TLS handshake (default connectMs) */
  handshakeMs?: number;
}

export interface TransportOptions {
  timeouts: TransportTimeouts;
  /** extra CA certificates (PEM) to trust, e.g. a private CA */
  ca?: string | string[];
  /** check the certificate (default: the Endpoint's verify=) */
  verify?: boolean;
  minTlsVersion?: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';
  /** longest line accepted (default 64 KiB) */
  maxLineBytes?: number;
  /** TCP keepalive after this much silence (default 60 s) */
  keepAliveMs?: number;
  /** plain links read into a reused buffer (default true; see fast-reads.ts) */
  fastReads?: boolean;
  /** implicit TLS: leave the handshake to the caller (Transport.handshake) */
  deferTls?: boolean;
  /** told the TCP connect time, before any TLS */
  onConnected?: (connectMs: number) => void;
}
