/**
 * The frame every probe runs in: open the session, run the protocol script, turn a
 * ProbeError into the report's error, always close. What the operator can fix ends up in
 * the report; only a bug throws.
 */
import type { Endpoint } from '../config/endpoint.js';
import type { EvalContext, Evaluation } from './meanings.js';
import { ProbeError, ProbeSession, type ProbeOptions } from './session.js';
import { tlsFindings } from './tls-info.js';
import type { EndpointReport, Finding } from './types.js';

export interface ProbeTarget {
  role: string;
  endpoint: Endpoint;
  ctx: EvalContext;
}

export type Probe = (target: ProbeTarget, opts: ProbeOptions) => Promise<EndpointReport>;

/** A server that greets with another protocol's banner: say which one it looks like. */
export function guessProtocol(greeting: string): string {
  if (/^\* (OK|PREAUTH|BYE)/i.test(greeting))
    return 'this looks like IMAP: use imap:// or imaps://';
  if (/^[+-](OK|ERR)/i.test(greeting)) return 'this looks like POP3: use pop3:// or pop3s://';
  if (/^\d{3}[ -]/.test(greeting))
    return 'this looks like SMTP/LMTP: use smtp://, submission:// or lmtp://';
  if (/^SSH-/.test(greeting)) return 'this is an SSH server: check the port';
  return 'check that the port belongs to the protocol in the URL';
}

export function fail(code: string, message: string, hint: string): never {
  throw new ProbeError(code, message, hint);
}

export async function runProbe(
  target: ProbeTarget,
  opts: ProbeOptions,
  script: (s: ProbeSession, report: EndpointReport) => Promise<Evaluation>,
): Promise<EndpointReport> {
  const ep = target.endpoint;
  const report: EndpointReport = {
    role: target.role,
    url: ep.url,
    protocol: ep.protocol,
    host: ep.host,
    port: ep.port,
    tlsMode: ep.tls,
    ok: false,
    capabilities: [],
    findings: [],
    transcript: [],
  };
  let session: ProbeSession | undefined;
  let fatal: Finding | undefined;
  let found: Finding[] = [];
  try {
    session = await ProbeSession.open(ep, opts, (s) => {
      session = s;
    });
    const evaluation = await script(session, report);
    report.capabilities = evaluation.capabilities;
    found = evaluation.findings;
  } catch (err) {
    if (!(err instanceof ProbeError)) throw err;
    report.error = { code: err.code, message: err.message, hint: err.hint };
    fatal = { level: 'error', code: err.code, message: err.message, hint: err.hint };
  } finally {
    if (session) {
      report.connectMs = session.connectMs;
      report.transcript = session.transcript;
      if (session.tls) report.tls = session.tls;
      session.close();
    }
  }
  // What stopped the probe first, then the certificate, then what the capabilities imply.
  report.findings = [
    ...(fatal ? [fatal] : []),
    ...(report.tls ? tlsFindings(report.tls, ep.servername) : []),
    ...found,
  ];
  report.ok = !report.findings.some((f) => f.level === 'error');
  return report;
}

/** Reject a STARTTLS reply that is not a success, then make sure nothing was smuggled behind it. */
export async function upgrade(
  s: ProbeSession,
  command: string,
  reply: string,
  ok: boolean,
): Promise<void> {
  if (!ok) {
    fail(
      'ESTARTTLS',
      `the server refused ${command}: "${reply}"`,
      'fix TLS on the server (certificate, key), or use the implicit-TLS port',
    );
  }
  s.assertNothingBuffered(command);
  await s.startTls('starttls');
}

export function noStartTls(s: ProbeSession, command: string, implicitScheme: string): never {
  return fail(
    'ENOSTARTTLS',
    `${s.where} does not offer ${command}, and the URL says tls=starttls; AutoPort never falls back to plain text`,
    `enable TLS on the server, or use its implicit-TLS port (${implicitScheme})`,
  );
}
