/** Human rendering of a CheckResult (the --json output is the same object, serialised). */
import type {
  CapabilityReport,
  CheckResult,
  EndpointReport,
  Finding,
  LocalTlsReport,
  TlsReport,
} from '../core/check/types.js';
import { plain, type Style, type Tone } from './style.js';
import { renderTable } from './table.js';

const STATUS: Record<CapabilityReport['level'], (present: boolean | null) => string> = {
  ok: (p) => (p === null ? '?' : p ? 'yes' : 'no'),
  info: (p) => (p === null ? '?' : p ? 'yes' : 'no'),
  warn: () => 'WARN',
  error: () => 'FAIL',
};

const TONE: Record<string, Tone> = { OK: 'ok', WARN: 'warn', FAIL: 'bad', FAILED: 'bad' };

/** a status word in its colour (yes/no/? stay as they are) */
function word(text: string, style: Style): string {
  const tone = TONE[text];
  return tone ? style.status(text, tone) : text;
}

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

function findingLines(findings: Finding[], width: number, style: Style): string {
  const rows: string[][] = [];
  for (const f of findings) {
    rows.push([word(f.level === 'error' ? 'FAIL' : 'WARN', style), f.message]);
    if (f.hint) rows.push(['', `try: ${f.hint}`]);
  }
  return renderTable(rows, { indent: 2, maxWidth: width });
}

function renderEndpoint(e: EndpointReport, width: number, style: Style): string {
  let out = `${style.header(e.role)}  ${e.url}  ${word(e.ok ? 'OK' : 'FAILED', style)}\n`;
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
        word(STATUS[c.level](c.present), style),
        c.value ? `${c.name} ${c.value}` : c.name,
        c.meaning,
      ]),
      { indent: 4, maxWidth: width },
    );
  }
  out += findingLines(e.findings, width, style);
  return out;
}

function renderLocal(l: LocalTlsReport, width: number, style: Style): string {
  let out = `${style.header("listeners' certificate")}  ${l.cert}  ${word(l.ok ? 'OK' : 'FAILED', style)}\n`;
  const rows: string[][] = [];
  if (l.subject) rows.push(['subject', l.subject]);
  if (l.issuer) rows.push(['issuer', l.issuer]);
  if (l.altNames) rows.push(['names', l.altNames.join(', ')]);
  if (l.validFrom) rows.push(['valid', `${day(l.validFrom)} to ${day(l.validTo)}`]);
  out += renderTable(rows, { indent: 2, maxWidth: width });
  out += findingLines(l.findings, width, style);
  return out;
}

export function renderCheck(result: CheckResult, width = 100, style: Style = plain): string {
  const parts = [`autoport check  ${result.configFile}  ${result.checkedAt}\n`];
  for (const w of result.warnings) parts.push(`${word('WARN', style)} ${w}\n`);
  for (const e of result.endpoints) parts.push(renderEndpoint(e, width, style));
  if (result.localTls) parts.push(renderLocal(result.localTls, width, style));
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
