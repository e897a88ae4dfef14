/**
 * Shared pieces of the capability tables (meanings-imap/pop3/smtp.ts): what each capability
 * means for the migration, per side; the probes only collect raw capability lists.
 */
import type { CapabilityReport, Finding, Level } from './types.js';

export interface EvalContext {
  side: 'source' | 'destination';
  /** submission endpoint: relaying needs AUTH (RFC 6409 4.3) */
  submission: boolean;
  lmtp: boolean;
  /** the source inbox is copied over POP3 (source.useImap false) */
  copiesOverPop3: boolean;
  /** the endpoint uses STARTTLS, so pre-TLS capabilities were seen */
  startTls: boolean;
  /** the capability list is the post-login one (the probe logged in) */
  loggedIn?: boolean;
}

export interface Evaluation {
  capabilities: CapabilityReport[];
  findings: Finding[];
}

export interface Rule {
  name: string;
  /** when present: what it gives */
  yes: string;
  /** when absent: what it costs, and how bad that is on this side */
  no: (ctx: EvalContext) => [Level, string];
  /**
   * servers may announce it only after login (RFC 3501 7.2.1; Dovecot does), so its absence
   * before login means "unknown", not "no"
   */
  afterLogin?: boolean;
}

export function info(text: string): [Level, string] {
  return ['info', text];
}

export function has(caps: string[], name: string): string | undefined {
  const upper = name.toUpperCase();
  return caps.find((c) => {
    const u = c.toUpperCase();
    return u === upper || u.startsWith(`${upper}=`);
  });
}

const UNKNOWN_BEFORE_LOGIN =
  'not announced before login (servers such as Dovecot list it only after login)';

export function row(
  name: string,
  present: boolean | null,
  meaning: string,
  level: Level,
  value?: string,
): CapabilityReport {
  return value === undefined
    ? { name, present, meaning, level }
    : { name, present, meaning, level, value };
}

export function applyRules(
  rules: Rule[],
  caps: string[],
  ctx: EvalContext,
  out: CapabilityReport[],
): void {
  for (const r of rules) {
    const found = has(caps, r.name);
    if (found) {
      const value = found.includes('=') ? found.slice(found.indexOf('=') + 1) : undefined;
      out.push(row(r.name, true, r.yes, 'ok', value || undefined));
    } else if (r.afterLogin && !ctx.loggedIn) {
      out.push(row(r.name, null, UNKNOWN_BEFORE_LOGIN, 'info'));
    } else {
      const [level, text] = r.no(ctx);
      out.push(row(r.name, false, text, level));
    }
  }
}

export function findingsFrom(rows: CapabilityReport[]): Finding[] {
  return rows
    .filter((r) => r.level === 'warn' || r.level === 'error')
    .map((r) => ({
      level: r.level as 'warn' | 'error',
      code: `CAP_${r.name.replace(/\W/g, '_')}`,
      message: `${r.name}: ${r.meaning}`,
    }));
}

/**
 * IMAP CAPABILITY (RFC 3501 7.2.1). `pre`: the list before STARTTLS; `beforeLogin`: the list
 * after TLS but before login, where the login methods are (when the probe logged in).
 */
