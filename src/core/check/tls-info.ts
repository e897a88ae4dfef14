/**
 * What a TLS connection tells about the server: protocol, cipher, certificate, and a verdict
 * on the certificate. The probe connects with rejectUnauthorized: false so it can describe
 * a bad certificate instead of just failing; the verdict decides whether that is an error.
 */
import { checkServerIdentity, type PeerCertificate, type TLSSocket } from 'node:tls';
import type { Finding, TlsReport, Verification } from './types.js';

const VERDICTS: Record<string, Verification> = {
  DEPTH_ZERO_SELF_SIGNED_CERT: 'self-signed',
  SELF_SIGNED_CERT_IN_CHAIN: 'self-signed',
  CERT_HAS_EXPIRED: 'expired',
  CERT_NOT_YET_VALID: 'not-yet-valid',
  ERR_TLS_CERT_ALTNAME_INVALID: 'name-mismatch',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'untrusted',
  UNABLE_TO_GET_ISSUER_CERT: 'untrusted',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'untrusted',
};

function dn(subject: Record<string, string | string[]> | undefined): string | undefined {
  if (!subject) return undefined;
  const parts = Object.entries(subject).map(
    ([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : v}`,
  );
  return parts.length > 0 ? parts.join(', ') : undefined;
}

function iso(date: string | undefined): string | undefined {
  if (!date) return undefined;
  const t = Date.parse(date);
  return Number.isNaN(t) ? date : new Date(t).toISOString();
}

export function altNamesOf(subjectaltname: string | undefined): string[] | undefined {
  if (!subjectaltname) return undefined;
  return subjectaltname.split(/,\s*/).map((n) => n.replace(/^(DNS|IP Address):/, ''));
}

export function describeTls(
  socket: TLSSocket,
  mode: 'implicit' | 'starttls',
  servername: string,
  enforced: boolean,
  handshakeMs: number,
): TlsReport {
  const cert = socket.getPeerCertificate(false) as PeerCertificate | Record<string, never>;
  const hasCert = 'subject' in cert && cert.subject !== undefined;
  const code = socket.authorized ? undefined : String(socket.authorizationError ?? 'UNKNOWN');
  const nameMatches = hasCert
    ? checkServerIdentity(servername, cert as PeerCertificate) === undefined
    : false;
  const cipher = socket.getCipher();
  const report: TlsReport = {
    mode,
    protocol: socket.getProtocol() ?? undefined,
    cipher: cipher?.standardName ?? cipher?.name,
    handshakeMs,
    verification: code === undefined ? 'valid' : (VERDICTS[code] ?? 'invalid'),
    nameMatches,
    enforced,
  };
  if (code !== undefined) report.verifyCode = code;
  if (hasCert) {
    const c = cert as PeerCertificate;
    report.subject = dn(c.subject as unknown as Record<string, string>);
    report.issuer = dn(c.issuer as unknown as Record<string, string>);
    report.altNames = altNamesOf(c.subjectaltname);
    report.validFrom = iso(c.valid_from);
    report.validTo = iso(c.valid_to);
    report.fingerprint256 = c.fingerprint256;
  }
  return report;
}

const DAY = 86_400_000;

/** Findings on a TLS report: a bad certificate is an error unless verify=false. */
export function tlsFindings(tls: TlsReport, servername: string, now = Date.now()): Finding[] {
  const out: Finding[] = [];
  if (tls.verification !== 'valid') {
    const what = verdictText(tls, servername);
    if (tls.enforced) {
      out.push({
        level: 'error',
        code: 'ECERT',
        message: `certificate not accepted: ${what}`,
        hint: certHint(tls, servername),
      });
    } else {
      out.push({
        level: 'warn',
        code: 'ECERT_UNCHECKED',
        message: `certificate checks are off (verify=false); they would fail: ${what}`,
        hint: 'fine for a test server; for production fix the certificate and drop verify=false',
      });
    }
  } else if (tls.validTo && Date.parse(tls.validTo) - now < 14 * DAY) {
    out.push({
      level: 'warn',
      code: 'ECERT_EXPIRING',
      message: `certificate expires ${tls.validTo.slice(0, 10)}`,
      hint: 'renew it before the migration window',
    });
  }
  if (tls.protocol && /^(SSLv|TLSv1(\.1)?$)/.test(tls.protocol)) {
    out.push({
      level: 'warn',
      code: 'EOLDTLS',
      message: `the server negotiated ${tls.protocol}, which is obsolete (RFC 8996)`,
      hint: 'enable TLS 1.2 or 1.3 on the server',
    });
  }
  return out;
}

function verdictText(tls: TlsReport, servername: string): string {
  switch (tls.verification) {
    case 'self-signed':
      return `self-signed (${tls.subject ?? 'no subject'})`;
    case 'expired':
      return `expired on ${tls.validTo?.slice(0, 10) ?? '?'}`;
    case 'not-yet-valid':
      return `not valid before ${tls.validFrom?.slice(0, 10) ?? '?'}`;
    case 'name-mismatch':
      return `issued for ${tls.altNames?.join(', ') ?? tls.subject ?? '?'}, not ${servername}`;
    case 'untrusted':
      return `issued by ${tls.issuer ?? '?'}, a CA this machine does not trust`;
    default:
      return tls.verifyCode === 'INVALID_PURPOSE'
        ? 'not a TLS server certificate (key usage / extended key usage, INVALID_PURPOSE)'
        : (tls.verifyCode ?? 'verification failed');
  }
}

function certHint(tls: TlsReport, servername: string): string {
  switch (tls.verification) {
    case 'expired':
    case 'not-yet-valid':
      return "renew the server's certificate (or fix its clock)";
    case 'name-mismatch':
      return `connect by a name on the certificate, or add ?servername=<name on the certificate> to the URL (now ${servername})`;
    default:
      return 'use a certificate from a trusted CA; for a private CA start autoport with NODE_EXTRA_CA_CERTS=/path/to/ca.pem; verify=false in the URL skips the check (test servers only)';
  }
}
