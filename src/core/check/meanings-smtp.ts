/** What SMTP / LMTP extensions mean for the migration (RFC 5321, RFC 2033). */
import type { CapabilityReport } from './types.js';
import { findingsFrom, row, type EvalContext, type Evaluation } from './meanings.js';

/** The EHLO keyword line for `name` (as "NAME", "NAME args" or "NAME=args"), if offered. */
function keyword(caps: string[], name: string): string | undefined {
  const u = name.toUpperCase();
  return caps.find(
    (c) =>
      c.toUpperCase() === u ||
      c.toUpperCase().startsWith(`${u} `) ||
      c.toUpperCase().startsWith(`${u}=`),
  );
}

function param(hit: string | undefined): string | undefined {
  const m = hit ? /^[^\s=]+[\s=](.*)$/.exec(hit) : null;
  return m?.[1]?.trim() || undefined;
}

/** AUTH and XCLIENT: what AutoPort can pass on when it relays a client's mail. */
function relayRows(kw: (name: string) => string | undefined, ctx: EvalContext): CapabilityReport[] {
  const rows: CapabilityReport[] = [];
  const auth = kw('AUTH');
  const mechs = (param(auth) ?? '').toUpperCase().split(/\s+/).filter(Boolean);
  const usable = mechs.includes('PLAIN') || mechs.includes('LOGIN');
  if (ctx.submission) {
    rows.push(
      row(
        'AUTH',
        Boolean(auth),
        usable
          ? 'AutoPort can relay logins with AUTH PLAIN/LOGIN (RFC 4954)'
          : "no AUTH PLAIN or LOGIN: AutoPort cannot pass users' logins to this submission server",
        usable ? 'ok' : 'error',
        mechs.length > 0 ? mechs.join(' ') : undefined,
      ),
    );
  } else if (!ctx.lmtp) {
    rows.push(
      row(
        'AUTH',
        Boolean(auth),
        auth ? 'offered (not needed for delivery)' : 'not offered (not needed for delivery)',
        'info',
        mechs.length > 0 ? mechs.join(' ') : undefined,
      ),
    );
  }
  if (!ctx.lmtp) {
    rows.push(
      kw('XCLIENT')
        ? row(
            'XCLIENT',
            true,
            "AutoPort can pass the sending client's address (Postfix smtpd_authorized_xclient_hosts)",
            'ok',
            param(kw('XCLIENT')),
          )
        : row(
            'XCLIENT',
            false,
            ctx.side === 'source'
              ? "the source sees relayed mail coming from AutoPort's address: allow it in the source's relay and spam rules"
              : "the server sees mail coming from AutoPort's address",
            'info',
          ),
    );
  }
  return rows;
}

export function evaluateSmtp(
  caps: string[] | undefined,
  pre: string[] | undefined,
  ctx: EvalContext,
): Evaluation {
  const rows: CapabilityReport[] = [];
  if (pre) rows.push(row('STARTTLS', true, 'TLS before anything else (RFC 3207)', 'ok'));
  if (!caps) {
    rows.push(
      row(
        'EHLO',
        false,
        'no ESMTP: no SIZE, 8BITMIME or STARTTLS; 8-bit mail may be refused',
        'warn',
      ),
    );
    return { capabilities: rows, findings: findingsFrom(rows) };
  }
  const kw = (name: string): string | undefined => keyword(caps, name);
  const size = kw('SIZE');
  const sizeValue = param(size);
  rows.push(
    size
      ? row(
          'SIZE',
          true,
          sizeValue && sizeValue !== '0'
            ? `largest message accepted: ${sizeValue} bytes (RFC 1870)`
            : 'no fixed size limit announced',
          'ok',
          sizeValue,
        )
      : row(
          'SIZE',
          false,
          'size limit unknown: a too-big message is refused after its DATA',
          'info',
        ),
  );
  rows.push(
    kw('8BITMIME')
      ? row('8BITMIME', true, '8-bit message bodies pass unchanged (RFC 6152)', 'ok')
      : row('8BITMIME', false, '8-bit messages may be refused or need conversion', 'warn'),
  );
  rows.push(
    kw('PIPELINING')
      ? row(
          'PIPELINING',
          true,
          'MAIL/RCPT/DATA batched: fewer round-trips per relayed message (RFC 2920)',
          'ok',
        )
      : row('PIPELINING', false, 'one command per round-trip', 'info'),
  );
  rows.push(
    kw('SMTPUTF8')
      ? row('SMTPUTF8', true, 'internationalised addresses accepted (RFC 6531)', 'ok')
      : row('SMTPUTF8', false, 'mail to or from non-ASCII addresses will be refused', 'info'),
  );
  rows.push(
    kw('ENHANCEDSTATUSCODES')
      ? row(
          'ENHANCEDSTATUSCODES',
          true,
          'refusals carry x.y.z codes AutoPort can pass on (RFC 2034)',
          'ok',
        )
      : row(
          'ENHANCEDSTATUSCODES',
          false,
          'refusals without x.y.z codes; AutoPort adds generic ones',
          'info',
        ),
  );
  rows.push(...relayRows(kw, ctx));
  return { capabilities: rows, findings: findingsFrom(rows) };
}
