/** Human rendering of a CheckResult (the --json output is the same object, serialised). */
import type {
  CapabilityReport,
  CheckResult,
  EndpointReport,
  Finding,
  LocalTlsReport,
  TlsReport,
} from '../core/check/types.js';
import { renderTable } from './table.js';

const STATUS: Record<CapabilityReport['level'], (present: boolean | null) => string> = {
  ok: (p) => (p === null ? '?' : p ? 'yes' : 'no'),
  info: (p) => (p === null ? '?' : p ? 'yes' : 'no'),
  warn: () => 'WARN',
  error: () => 'FAIL',
};

function day(iso: string | undefined): string {
  return iso ? iso.slice(0, 10) : '?';
}

function tlsRows(tls: TlsReport): string[][] {
  const rows = [
    [
      'tls',
      [
        tls.mode === 'implicit' ? 'implicit TLS' : 'STARTTLS',
        tls.protocol,
        tls.cipher,
        tls.handshakeMs !== undefined ? `handshake ${tls.handshakeMs} ms` : undefined,
      ]
        .filter(Boolean)
        .join(', '),
    ],
  ];
  rows.push([
    'certificate',
    `${tls.subject ?? '(none)'}; issued by ${tls.issuer ?? '?'}; valid ${day(tls.validFrom)} to ${day(tls.validTo)}`,
  ]);
  if (tls.altNames) rows.push(['names', tls.altNames.join(', ')]);
  const verdict =
    tls.verification === 'valid' ? 'valid' : `${tls.verification} (${tls.verifyCode ?? '?'})`;
  rows.push(['verification', tls.enforced ? verdict : `${verdict}; not enforced (verify=false)`]);
  return rows;
}

function findingLines(findings: Finding[], width: number): string {
  const rows: string[][] = [];
  for (const f of findings) {
    rows.push([f.level === 'error' ? 'FAIL' : 'WARN', f.message]);
    if (f.hint) rows.push(['', `try: ${f.hint}`]);
  }
  return renderTable(rows, { indent: 2, maxWidth: width });
}

function renderEndpoint(e: EndpointReport, width: number): string {
  let out = `${e.role}  ${e.url}  ${e.ok ? 'OK' : 'FAILED'}\n`;
  const rows: string[][] = [];
  if (e.connectMs !== undefined) rows.push(['connect', `${e.connectMs} ms to ${e.host}:${e.port}`]);
  if (e.tls) rows.push(...tlsRows(e.tls));
  else if (e.connectMs !== undefined && e.tlsMode === 'none')
    rows.push(['tls', 'none (plain text, as the URL says)']);
  if (e.greeting !== undefined) rows.push(['greeting', e.greeting]);
  out += renderTable(rows, { indent: 2, maxWidth: width });
  if (e.capabilities.length > 0) {
    out += '  capabilities:\n';
    out += renderTable(
      e.capabilities.map((c) => [
        STATUS[c.level](c.present),
        c.value ? `${c.name} ${c.value}` : c.name,
        c.meaning,
      ]),
      { indent: 4, maxWidth: width },
    );
  }
  out += findingLines(e.findings, width);
  return out;
}

function renderLocal(l: LocalTlsReport, width: number): string {
  let out = `listeners' certificate  ${l.cert}  ${l.ok ? 'OK' : 'FAILED'}\n`;
  const rows: string[][] = [];
  if (l.subject) rows.push(['subject', l.subject]);
  if (l.issuer) rows.push(['issuer', l.issuer]);
  if (l.altNames) rows.push(['names', l.altNames.join(', ')]);
  if (l.validFrom) rows.push(['valid', `${day(l.validFrom)} to ${day(l.validTo)}`]);
  out += renderTable(rows, { indent: 2, maxWidth: width });
  out += findingLines(l.findings, width);
  return out;
}

export function renderCheck(result: CheckResult, width = 100): string {
  const parts = [`autoport check  ${result.configFile}  ${result.checkedAt}\n`];
  for (const w of result.warnings) parts.push(`WARN ${w}\n`);
  for (const e of result.endpoints) parts.push(renderEndpoint(e, width));
  if (result.localTls) parts.push(renderLocal(result.localTls, width));
  const failed = result.endpoints.filter((e) => !e.ok);
  const total = result.endpoints.length;
  let summary =
    failed.length === 0
      ? `result: all ${total} endpoints OK`
      : `result: ${failed.length} of ${total} endpoints failed (${failed.map((e) => e.role).join(', ')})`;
  if (result.localTls && !result.localTls.ok)
    summary += "; the listeners' certificate has a problem";
  parts.push(`${summary}\n`);
  return parts.join('\n');
}

/** The first failure's cause and hint, for a one-line summary on stderr. */
export function firstFailure(result: CheckResult): { where: string; finding: Finding } | undefined {
  for (const e of result.endpoints) {
    const f = e.findings.find((x) => x.level === 'error');
    if (f) return { where: `${e.role} ${e.url}`, finding: f };
  }
  const f = result.localTls?.findings.find((x) => x.level === 'error');
  return f ? { where: 'tls', finding: f } : undefined;
}
