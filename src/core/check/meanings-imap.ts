/** What IMAP capabilities mean for the migration (RFC 3501 7.2.1 and extensions). */
import type { CapabilityReport } from './types.js';
import {
  applyRules,
  findingsFrom,
  has,
  info,
  row,
  type EvalContext,
  type Evaluation,
  type Rule,
} from './meanings.js';

const IMAP_RULES: Rule[] = [
  {
    name: 'NAMESPACE',
    afterLogin: true,
    yes: 'folder prefix and delimiter read from NAMESPACE (RFC 2342)',
    no: () => info('prefix and delimiter guessed from LIST "" ""'),
  },
  {
    name: 'UIDPLUS',
    afterLogin: true,
    yes: 'APPENDUID gives each copy its destination UID: exact resume after an interruption (RFC 4315)',
    no: (c) =>
      c.side === 'destination'
        ? ['warn', 'no APPENDUID: an interrupted copy resumes by comparing checksums (slower)']
        : info('not needed on the source'),
  },
  {
    name: 'CONDSTORE',
    afterLogin: true,
    yes: 'MODSEQ: flag changes since the last pass found fast (RFC 7162)',
    no: (c) =>
      info(
        c.side === 'source'
          ? 'flag changes re-read with UID FETCH 1:* (FLAGS): slower deltas'
          : 'not needed on the destination',
      ),
  },
  {
    name: 'QRESYNC',
    afterLogin: true,
    yes: 'expunges since the last pass found fast (RFC 7162)',
    no: (c) =>
      info(
        c.side === 'source'
          ? 'expunges found by comparing UID lists'
          : 'not needed on the destination',
      ),
  },
  {
    name: 'SPECIAL-USE',
    afterLogin: true,
    yes: 'Sent, Drafts, Trash, Junk, Archive found by attribute (RFC 6154)',
    no: () => info('special folders matched by name (incl. localized names)'),
  },
  {
    name: 'APPENDLIMIT',
    afterLogin: true,
    yes: 'largest message the server accepts (RFC 7889)',
    no: (c) =>
      info(
        c.side === 'destination'
          ? 'no announced size limit: a too-big message shows up as an APPEND failure'
          : 'not needed on the source',
      ),
  },
  {
    name: 'LITERAL+',
    yes: 'non-synchronising literals: APPEND without a round-trip (RFC 7888)',
    no: (c) =>
      info(
        c.side === 'destination'
          ? 'each APPEND waits for a "+" continuation (one round-trip per message)'
          : 'not needed on the source',
      ),
  },
  {
    name: 'ID',
    yes: 'AutoPort can pass the client address (x-originating-ip, RFC 2971) so the server penalises the client, not AutoPort',
    no: (c) =>
      c.side === 'source'
        ? [
            'warn',
            "the source sees every login coming from AutoPort's address: exempt it from brute-force bans (fail2ban)",
          ]
        : info('client address not forwarded'),
  },
];

export function evaluateImap(
  caps: string[],
  pre: string[] | undefined,
  ctx: EvalContext,
  beforeLogin: string[] = caps,
): Evaluation {
  const rows: CapabilityReport[] = [];
  const rev1 = has(caps, 'IMAP4rev1');
  const rev2 = has(caps, 'IMAP4rev2');
  rows.push(
    rev1
      ? row('IMAP4rev1', true, 'the protocol AutoPort speaks (RFC 3501)', 'ok')
      : rev2
        ? row(
            'IMAP4rev1',
            false,
            'IMAP4rev2 only (RFC 9051): mostly compatible, not tested',
            'warn',
          )
        : row(
            'IMAP4rev1',
            false,
            'not an IMAP4rev1 server: AutoPort cannot copy from or to it',
            'error',
          ),
  );
  if (pre) {
    rows.push(row('STARTTLS', true, 'TLS before any password (RFC 3501 6.2.1)', 'ok'));
    rows.push(
      has(pre, 'LOGINDISABLED')
        ? row(
            'LOGINDISABLED',
            true,
            'before TLS: plain-text login refused (good; AutoPort starts TLS first)',
            'ok',
          )
        : row(
            'LOGINDISABLED',
            false,
            'before TLS: the server would take passwords in clear from careless clients (AutoPort always starts TLS first)',
            'info',
          ),
    );
  }
  const loginDisabled = Boolean(has(beforeLogin, 'LOGINDISABLED'));
  const mechs = beforeLogin.filter((c) => /^AUTH=/i.test(c)).map((c) => c.slice(5).toUpperCase());
  const usable = mechs.filter((m) => m === 'PLAIN' || m === 'LOGIN');
  const canLogin = !loginDisabled || usable.length > 0;
  rows.push(
    row(
      'AUTH',
      mechs.length > 0 || !loginDisabled,
      canLogin
        ? `AutoPort can check passwords with ${[...(loginDisabled ? [] : ['LOGIN']), ...usable.map((m) => `AUTHENTICATE ${m}`)].join(', ')}`
        : 'no password login AutoPort can use (LOGINDISABLED even with TLS, no AUTH=PLAIN)',
      canLogin ? 'ok' : 'error',
      mechs.length > 0 ? mechs.join(' ') : undefined,
    ),
  );
  applyRules(IMAP_RULES, caps, ctx, rows);
  return { capabilities: rows, findings: findingsFrom(rows) };
}

/** POP3 CAPA (RFC 2449); caps undefined: the server has no CAPA (RFC 1939 only). */
