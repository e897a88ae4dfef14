/**
 * `autoport check`: probe every configured server at once and look at AutoPort's own
 * certificate. Read-only: it logs in nowhere, sends no mail and writes nothing.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Config } from '../config/types.js';
import type { EvalContext } from './meanings.js';
import type { Probe, ProbeTarget } from './probe.js';
import { probeImap } from './probe-imap.js';
import { probePop3 } from './probe-pop3.js';
import { probeSmtp } from './probe-smtp.js';
import type { ProbeOptions } from './session.js';
import { altNamesOf } from './tls-info.js';
import type { CheckResult, Finding, LocalTlsReport } from './types.js';

export interface CheckOptions {
  /** one timeout (ms) for connect, greeting and each command, overriding the config */
  timeoutMs?: number;
  /** extra trusted CA certificates (PEM) for the servers' certificates */
  ca?: string | string[];
  clientName?: string;
  /** log in on IMAP with these accounts to see post-login capabilities (see ProbeOptions) */
  credentials?: ProbeOptions['credentials'];
  /** replace probes (tests inject fault-injecting ones); keyed by protocol */
  probes?: Partial<Record<'imap' | 'pop3' | 'smtp' | 'lmtp', Probe>>;
  now?: () => Date;
}

const KEYS = ['imap', 'pop3', 'smtp', 'submission'] as const;

/** Every configured server endpoint, in config order, with what matters on its side. */
export function checkTargets(config: Config): ProbeTarget[] {
  const out: ProbeTarget[] = [];
  for (const side of ['source', 'destination'] as const) {
    for (const key of KEYS) {
      const endpoint = config[side][key];
      if (!endpoint) continue;
      const ctx: EvalContext = {
        side,
        submission: endpoint.submission,
        lmtp: endpoint.protocol === 'lmtp',
        copiesOverPop3: side === 'source' && !config.source.useImap,
        startTls: endpoint.tls === 'starttls',
      };
      out.push({ role: `${side}.${key}`, endpoint, ctx });
    }
  }
  return out;
}

export async function runCheck(config: Config, options: CheckOptions = {}): Promise<CheckResult> {
  const t = config.timeouts;
  const probeOptions: ProbeOptions = {
    timeouts: options.timeoutMs
      ? {
          connectMs: options.timeoutMs,
          greetingMs: options.timeoutMs,
          commandMs: options.timeoutMs,
        }
      : { connectMs: t.connectMs, greetingMs: t.greetingMs, commandMs: t.commandMs },
  };
  if (options.ca) probeOptions.ca = options.ca;
  if (options.clientName) probeOptions.clientName = options.clientName;
  if (options.credentials) probeOptions.credentials = options.credentials;
  const probes: Record<string, Probe> = {
    imap: probeImap,
    pop3: probePop3,
    smtp: probeSmtp,
    lmtp: probeSmtp,
    ...options.probes,
  };
  const endpoints = await Promise.all(
    checkTargets(config).map((target) =>
      (probes[target.endpoint.protocol] as Probe)(target, probeOptions),
    ),
  );
  const now = options.now?.() ?? new Date();
  const result: CheckResult = {
    ok: endpoints.every((e) => e.ok),
    configFile: config.file,
    checkedAt: now.toISOString(),
    endpoints,
    warnings: [...(config.warnings ?? [])],
  };
  if (config.tls) {
    result.localTls = checkLocalTls(config.tls.cert, config.tls.key, now);
    if (!result.localTls.ok) result.ok = false;
  }
  return result;
}

const DAY = 86_400_000;

/** The listeners' certificate: readable, parseable, matching its key, in date. */
export function checkLocalTls(certFile: string, keyFile: string, now = new Date()): LocalTlsReport {
  const report: LocalTlsReport = { cert: certFile, key: keyFile, ok: false, findings: [] };
  const problem = (code: string, message: string, hint: string): LocalTlsReport => {
    report.findings.push({ level: 'error', code, message, hint });
    return report;
  };
  let certPem: Buffer;
  let keyPem: Buffer;
  try {
    certPem = readFileSync(certFile);
  } catch (err) {
    return problem(
      'ETLSFILE',
      `cannot read tls.cert ${certFile} (${(err as NodeJS.ErrnoException).code})`,
      'fix the path in tls.cert, or its permissions',
    );
  }
  try {
    keyPem = readFileSync(keyFile);
  } catch (err) {
    return problem(
      'ETLSFILE',
      `cannot read tls.key ${keyFile} (${(err as NodeJS.ErrnoException).code})`,
      'fix the path in tls.key, or its permissions',
    );
  }
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch {
    return problem(
      'ETLSFILE',
      `tls.cert ${certFile} is not a PEM certificate`,
      'give the PEM certificate (chain), leaf first',
    );
  }
  report.subject = cert.subject.replace(/\n/g, ', ');
  report.issuer = cert.issuer.replace(/\n/g, ', ');
  const alt = altNamesOf(cert.subjectAltName);
  if (alt) report.altNames = alt;
  report.validFrom = new Date(cert.validFrom).toISOString();
  report.validTo = new Date(cert.validTo).toISOString();
  try {
    if (!cert.checkPrivateKey(createPrivateKey(keyPem))) {
      problem(
        'ETLSKEY',
        'tls.key does not belong to tls.cert',
        'give the key the certificate was issued for',
      );
    }
  } catch {
    problem(
      'ETLSKEY',
      `tls.key ${keyFile} is not a readable PEM private key (encrypted keys are not supported)`,
      'give an unencrypted PEM key (mode 0600)',
    );
  }
  const to = Date.parse(report.validTo);
  const from = Date.parse(report.validFrom);
  if (now.getTime() > to)
    problem(
      'ECERT',
      `the listeners' certificate expired on ${report.validTo.slice(0, 10)}`,
      'renew it',
    );
  else if (now.getTime() < from)
    problem(
      'ECERT',
      `the listeners' certificate is not valid before ${report.validFrom.slice(0, 10)}`,
      'check the clock or the certificate',
    );
  else if (to - now.getTime() < 14 * DAY) {
    const f: Finding = {
      level: 'warn',
      code: 'ECERT_EXPIRING',
      message: `the listeners' certificate expires ${report.validTo.slice(0, 10)}`,
      hint: 'renew it before the migration window',
    };
    report.findings.push(f);
  }
  report.ok = !report.findings.some((x) => x.level === 'error');
  return report;
}
