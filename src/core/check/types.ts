/** The result of `autoport check`: one object, rendered as a table or printed as JSON. */
import type { Protocol, TlsMode } from '../config/endpoint.js';

/** How the server certificate fared; anything but "valid" fails unless the URL says verify=false. */
export type Verification =
  'valid' | 'self-signed' | 'untrusted' | 'expired' | 'not-yet-valid' | 'name-mismatch' | 'invalid';

export interface TlsReport {
  mode: 'implicit' | 'starttls';
  /** e.g. TLSv1.3 */
  protocol?: string;
  /** e.g. TLS_AES_256_GCM_SHA384 */
  cipher?: string;
  handshakeMs?: number;
  subject?: string;
  issuer?: string;
  /** DNS and IP names the certificate is valid for */
  altNames?: string[];
  /** ISO dates */
  validFrom?: string;
  validTo?: string;
  fingerprint256?: string;
  verification: Verification;
  /** OpenSSL / Node code behind the verdict, e.g. DEPTH_ZERO_SELF_SIGNED_CERT */
  verifyCode?: string;
  /** the certificate covers the name AutoPort connects to (servername) */
  nameMatches: boolean;
  /** false when the URL says verify=false */
  enforced: boolean;
}

export type Level = 'ok' | 'info' | 'warn' | 'error';

export interface CapabilityReport {
  name: string;
  /** null: unknown (not announced before login, and the probe did not log in) */
  present: boolean | null;
  /** parameter, e.g. APPENDLIMIT=35651584 -> "35651584", AUTH -> "PLAIN LOGIN" */
  value?: string;
  /** what it means for the migration */
  meaning: string;
  level: Level;
}

export interface Finding {
  level: 'warn' | 'error';
  code: string;
  message: string;
  hint?: string;
}

export interface EndpointReport {
  /** config key, e.g. source.imap, destination.smtp */
  role: string;
  url: string;
  protocol: Protocol;
  host: string;
  port: number;
  tlsMode: TlsMode;
  ok: boolean;
  connectMs?: number;
  tls?: TlsReport;
  /** first line of the server greeting as received */
  greeting?: string;
  /** capabilities / extensions as listed before STARTTLS (when STARTTLS was used) */
  preTlsCapabilities?: string[];
  /** capabilities / extensions in effect for AutoPort (after TLS, after login when it logged in) */
  rawCapabilities?: string[];
  /** the account the probe logged in as (only when credentials were given) */
  loggedInAs?: string;
  capabilities: CapabilityReport[];
  findings: Finding[];
  /** the error that stopped the probe, if any (also in findings) */
  error?: { code: string; message: string; hint: string };
  /** the conversation, "C: " / "S: " prefixed, for --json and bug reports */
  transcript: string[];
}

export interface LocalTlsReport {
  cert: string;
  key: string;
  ok: boolean;
  subject?: string;
  issuer?: string;
  altNames?: string[];
  validFrom?: string;
  validTo?: string;
  findings: Finding[];
}

export interface CheckResult {
  ok: boolean;
  configFile: string;
  checkedAt: string;
  endpoints: EndpointReport[];
  /** the certificate AutoPort's own listeners will present */
  localTls?: LocalTlsReport;
  /** config warnings (e.g. password file readable by others) */
  warnings: string[];
}
