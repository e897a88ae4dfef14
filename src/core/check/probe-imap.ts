/**
 * IMAP probe: greeting, CAPABILITY, STARTTLS, CAPABILITY again, LOGOUT. No login.
 * Written on a bare socket (not imapflow) to see the raw greeting and STARTTLS exchange.
 */
import { hostPort } from '../config/endpoint.js';
import { evaluateImap } from './meanings-imap.js';
import { fail, guessProtocol, noStartTls, runProbe, upgrade, type Probe } from './probe.js';
import type { Credentials, ProbeSession } from './session.js';

/** Send a tagged command; return the untagged lines and the tagged completion. */
async function command(
  s: ProbeSession,
  tag: string,
  cmd: string,
): Promise<{ untagged: string[]; done: string }> {
  s.write(`${tag} ${cmd}`);
  return untilTagged(s, tag, `a reply to ${cmd}`);
}

function parseCaps(text: string): string[] {
  return text.trim().split(/\s+/).filter(Boolean);
}

function capsFrom(untagged: string[], done: string): string[] | undefined {
  for (const line of untagged) {
    const m = /^\* CAPABILITY (.*)$/i.exec(line);
    if (m?.[1]) return parseCaps(m[1]);
  }
  const code = /\[CAPABILITY ([^\]]*)\]/i.exec(done);
  return code?.[1] ? parseCaps(code[1]) : undefined;
}

/** CAPABILITY (RFC 3501 6.1.1); also accepts the list in the tagged OK's response code. */
async function capability(s: ProbeSession, tag: string): Promise<string[]> {
  const { untagged, done } = await command(s, tag, 'CAPABILITY');
  if (!new RegExp(`^${tag} OK\\b`, 'i').test(done)) {
    fail(
      'ECAPABILITY',
      `the server refused CAPABILITY: "${done}"`,
      'this server is not usable as an IMAP endpoint',
    );
  }
  return (
    capsFrom(untagged, done) ??
    fail(
      'ECAPABILITY',
      'the server answered CAPABILITY without a capability list',
      'this server is not usable as an IMAP endpoint',
    )
  );
}

export const probeImap: Probe = (target, opts) =>
  runProbe(target, opts, async (s, report) => {
    const ep = target.endpoint;
    const greeting = await s.readLine('a greeting', opts.timeouts.greetingMs);
    report.greeting = greeting;
    if (/^\* PREAUTH\b/i.test(greeting)) {
      // RFC 3501 7.1.4: already authenticated, so STARTTLS is impossible and every user would be
      // this one; a gateway cannot check passwords against such a server.
      fail(
        'EPREAUTH',
        `${hostPort(ep)} greeted with PREAUTH: the session is logged in before any password, so TLS cannot start and passwords cannot be checked`,
        'point AutoPort at a port that asks for a login (check the server for pre-authenticated or rsh-style access)',
      );
    }
    if (/^\* BYE\b/i.test(greeting)) {
      fail(
        'EREFUSED',
        `the server refused the connection: "${greeting}"`,
        'the server may limit connections from this address, or be shutting down',
      );
    }
    if (!/^\* OK\b/i.test(greeting)) {
      fail(
        'EGREETING',
        `unexpected greeting "${greeting}": not an IMAP server`,
        guessProtocol(greeting),
      );
    }
    let caps = await capability(s, 'A1');
    let pre: string[] | undefined;
    if (ep.tls === 'starttls') {
      pre = caps;
      report.preTlsCapabilities = pre;
      if (!pre.some((c) => c.toUpperCase() === 'STARTTLS'))
        noStartTls(s, 'STARTTLS', `imaps://${hostPort({ host: ep.host, port: 993 })}`);
      s.write('A2 STARTTLS');
      // RFC 3501 6.2.1: exactly one tagged completion; anything else before TLS is suspect.
      const reply = await s.readLine('a reply to STARTTLS');
      await upgrade(s, 'STARTTLS', reply, /^A2 OK\b/i.test(reply));
      caps = await capability(s, 'A3');
    }
    const credentials = opts.credentials?.[target.ctx.side];
    const beforeLogin = caps;
    if (credentials) {
      caps = await login(s, caps, credentials);
      report.loggedInAs = credentials.user;
    }
    report.rawCapabilities = caps;
    await logout(s);
    return evaluateImap(caps, pre, { ...target.ctx, loggedIn: Boolean(credentials) }, beforeLogin);
  });

async function logout(s: ProbeSession): Promise<void> {
  try {
    s.write('A9 LOGOUT');
    for (let i = 0; i < 3; i++)
      if ((await s.readLine('a reply to LOGOUT', 2000)).startsWith('A9 ')) break;
  } catch {
    /* the check is done; a server that drops the line on LOGOUT is not a finding */
  }
}

/** RFC 3501 4.3 quoted string; undefined when the text needs a literal. */
function quoted(text: string): string | undefined {
  if (!/^[\x20-\x7e]*$/.test(text)) return undefined;
  return `"${text.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** Log in (AUTHENTICATE PLAIN when offered, else LOGIN) and return the post-login capabilities. */
async function login(s: ProbeSession, caps: string[], cred: Credentials): Promise<string[]> {
  const upper = caps.map((c) => c.toUpperCase());
  let reply: { untagged: string[]; done: string };
  if (upper.includes('AUTH=PLAIN')) {
    // RFC 4616: authzid NUL authcid NUL password.
    const ir = Buffer.from(`\0${cred.user}\0${cred.password}`, 'utf8').toString('base64');
    if (upper.includes('SASL-IR')) {
      s.writeSecret(`L1 AUTHENTICATE PLAIN ${ir}`, 'L1 AUTHENTICATE PLAIN (credentials hidden)');
    } else {
      s.write('L1 AUTHENTICATE PLAIN');
      const cont = await s.readLine('an AUTHENTICATE continuation');
      if (!cont.startsWith('+'))
        fail(
          'ELOGIN',
          `the server refused AUTHENTICATE PLAIN: "${cont}"`,
          "check the server's auth settings",
        );
      s.writeSecret(ir, '(credentials hidden)');
    }
    reply = await untilTagged(s, 'L1', 'a reply to the login');
  } else {
    const user = quoted(cred.user);
    const pass = quoted(cred.password);
    if (!user || !pass || upper.includes('LOGINDISABLED')) {
      return fail(
        'ELOGIN',
        'no login method for these credentials (LOGINDISABLED or non-ASCII text, and no AUTH=PLAIN)',
        'enable AUTH=PLAIN on the server',
      );
    }
    s.writeSecret(`L1 LOGIN ${user} ${pass}`, `L1 LOGIN ${user} (password hidden)`);
    reply = await untilTagged(s, 'L1', 'a reply to the login');
  }
  if (!/^L1 OK\b/i.test(reply.done)) {
    fail(
      'ELOGIN',
      `login as ${cred.user} failed: "${reply.done.slice(3)}"`,
      'check the user name and password given to the check',
    );
  }
  // RFC 3501 6.2.3: the server may send the new list with the OK; else ask.
  return capsFrom(reply.untagged, reply.done) ?? capability(s, 'A4');
}

async function untilTagged(
  s: ProbeSession,
  tag: string,
  what: string,
): Promise<{ untagged: string[]; done: string }> {
  const untagged: string[] = [];
  for (;;) {
    const line = await s.readLine(what);
    if (line.startsWith(`${tag} `)) return { untagged, done: line };
    if (/^\* BYE\b/i.test(line))
      fail(
        'EBYE',
        `the server closed the session while AutoPort waited for ${what}: "${line}"`,
        'check the server log',
      );
    untagged.push(line);
  }
}
