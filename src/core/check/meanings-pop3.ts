/** What POP3 capabilities mean for the migration (RFC 2449). */
import type { CapabilityReport } from './types.js';
import { findingsFrom, row, type EvalContext, type Evaluation } from './meanings.js';

export function evaluatePop3(
  caps: string[] | undefined,
  pre: string[] | undefined,
  ctx: EvalContext,
): Evaluation {
  const rows: CapabilityReport[] = [];
  if (!caps) {
    rows.push(
      row(
        'CAPA',
        false,
        'no CAPA (RFC 2449): capabilities unknown; UIDL, TOP and login methods untested',
        'warn',
      ),
    );
    return { capabilities: rows, findings: findingsFrom(rows) };
  }
  const upper = caps.map((c) => c.toUpperCase());
  const word = (name: string): string | undefined =>
    upper.find((c) => c === name || c.startsWith(`${name} `));
  if (pre && ctx.startTls) {
    const preUpper = pre.map((c) => c.toUpperCase());
    rows.push(row('STLS', preUpper.includes('STLS'), 'TLS before any password (RFC 2595)', 'ok'));
  }
  rows.push(
    word('UIDL')
      ? row(
          'UIDL',
          true,
          'stable message ids: a POP3 copy resumes without duplicates, clients keep their "leave on server" state',
          'ok',
        )
      : ctx.side === 'source' && ctx.copiesOverPop3
        ? row('UIDL', false, 'no UIDL: a POP3 copy cannot resume without duplicates', 'error')
        : row(
            'UIDL',
            false,
            'no UIDL: clients that leave mail on the server may download it again after the move',
            'warn',
          ),
  );
  rows.push(
    word('TOP')
      ? row(
          'TOP',
          true,
          'headers without the body: quick planning and dates for POP3-only copies',
          'ok',
        )
      : row('TOP', false, 'planning must download whole messages', 'info'),
  );
  const sasl = word('SASL');
  const mechs = sasl ? sasl.split(/\s+/).slice(1) : [];
  const user = Boolean(word('USER'));
  rows.push(
    row(
      'USER',
      user,
      user ? 'USER/PASS login available' : 'no USER/PASS login',
      user ? 'ok' : 'info',
    ),
  );
  const plain = mechs.includes('PLAIN') || mechs.includes('LOGIN');
  rows.push(
    row(
      'SASL',
      mechs.length > 0,
      plain
        ? 'AUTH PLAIN available (RFC 5034)'
        : user
          ? 'no SASL PLAIN; USER/PASS is used'
          : 'no password login AutoPort can use (no USER, no SASL PLAIN)',
      plain || user ? (mechs.length > 0 ? 'ok' : 'info') : 'error',
      mechs.length > 0 ? mechs.join(' ') : undefined,
    ),
  );
  rows.push(
    word('RESP-CODES')
      ? row(
          'RESP-CODES',
          true,
          '[SYS/TEMP], [IN-USE] and [AUTH] answers can be told apart (RFC 2449, 3206)',
          'ok',
        )
      : row(
          'RESP-CODES',
          false,
          'refusals cannot be told apart: a temporary failure may look like a wrong password',
          'info',
        ),
  );
  rows.push(
    word('PIPELINING')
      ? row('PIPELINING', true, 'commands can be batched (faster RETR loops)', 'ok')
      : row('PIPELINING', false, 'one command per round-trip', 'info'),
  );
  return { capabilities: rows, findings: findingsFrom(rows) };
}

/** SMTP EHLO / LMTP LHLO keywords (RFC 5321 4.1.1.1, RFC 2033); caps undefined: no ESMTP. */
