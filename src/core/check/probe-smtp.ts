/** SMTP / LMTP probe: greeting, EHLO (LHLO), STARTTLS, EHLO again, QUIT. No mail is sent. */
import { hostname } from 'node:os';
import { hostPort } from '../config/endpoint.js';
import { evaluateSmtp } from './meanings-smtp.js';
import { fail, guessProtocol, noStartTls, runProbe, upgrade, type Probe } from './probe.js';
import type { ProbeSession } from './session.js';

interface Reply {
  code: number;
  lines: string[];
}

/** One reply, "250-..." continuation lines up to "250 ..." (RFC 5321 4.2.1). */
async function readReply(s: ProbeSession, waitingFor: string, timeoutMs?: number): Promise<Reply> {
  const lines: string[] = [];
  let code = 0;
  for (;;) {
    const line = await s.readLine(waitingFor, timeoutMs);
    const m = /^(\d{3})([ -]|$)(.*)$/.exec(line);
    if (!m) {
      fail(
        'EPROTOCOL',
        `unexpected line "${line}" while waiting for ${waitingFor}`,
        guessProtocol(line),
      );
    }
    const lineCode = Number(m[1]);
    if (code !== 0 && lineCode !== code) {
      fail(
        'EPROTOCOL',
        `a multi-line reply changed its code (${code} then ${lineCode})`,
        'the server is not speaking SMTP correctly',
      );
    }
    code = lineCode;
    lines.push(m[3] ?? '');
    if (m[2] !== '-') return { code, lines };
    if (lines.length > 200)
      fail('EPROTOCOL', 'a reply does not end', 'the server is not speaking SMTP correctly');
  }
}

function clientName(given: string | undefined): string {
  const name = given ?? hostname();
  // EHLO wants a domain or an address literal (RFC 5321 4.1.1.1).
  return /^[A-Za-z0-9.-]+$/.test(name) && name.includes('.') ? name : '[127.0.0.1]';
}

/** EHLO / LHLO: the extension keywords, or undefined for a plain-SMTP (HELO only) server. */
async function hello(s: ProbeSession, lmtp: boolean, name: string): Promise<string[] | undefined> {
  const verb = lmtp ? 'LHLO' : 'EHLO';
  s.write(`${verb} ${name}`);
  const reply = await readReply(s, `a reply to ${verb}`);
  if (reply.code === 250) return reply.lines.slice(1);
  if (lmtp)
    fail(
      'ELHLO',
      `the server refused LHLO: ${reply.code} ${reply.lines.join(' ')}`,
      'is this an LMTP port? (RFC 2033); for SMTP use smtp://',
    );
  // RFC 5321 3.2: fall back to HELO to tell "old server" from "refuses us".
  s.write(`HELO ${name}`);
  const helo = await readReply(s, 'a reply to HELO');
  if (helo.code !== 250)
    fail(
      'EHELO',
      `the server refused EHLO and HELO: ${helo.code} ${helo.lines.join(' ')}`,
      `check the server's client restrictions for this address`,
    );
  return undefined;
}

export const probeSmtp: Probe = (target, opts) =>
  runProbe(target, opts, async (s, report) => {
    const ep = target.endpoint;
    const lmtp = ep.protocol === 'lmtp';
    const greeting = await readReply(s, 'a greeting', opts.timeouts.greetingMs);
    report.greeting = `${greeting.code} ${greeting.lines.join(' / ')}`;
    if (greeting.code === 554 || greeting.code === 421) {
      fail(
        'EREFUSED',
        `the server refused the connection: ${report.greeting}`,
        'the server may block this address or be overloaded; check its client restrictions',
      );
    }
    if (greeting.code !== 220)
      fail('EGREETING', `unexpected greeting "${report.greeting}"`, guessProtocol(report.greeting));
    const name = clientName(opts.clientName);
    let caps = await hello(s, lmtp, name);
    let pre: string[] | undefined;
    if (ep.tls === 'starttls') {
      pre = caps ?? [];
      report.preTlsCapabilities = pre;
      const implicit = `smtps://${hostPort({ host: ep.host, port: 465 })}`;
      if (!pre.some((c) => c.toUpperCase() === 'STARTTLS')) noStartTls(s, 'STARTTLS', implicit);
      s.write('STARTTLS');
      const reply = await readReply(s, 'a reply to STARTTLS');
      await upgrade(s, 'STARTTLS', `${reply.code} ${reply.lines.join(' ')}`, reply.code === 220);
      // RFC 3207 4.2: forget what was learnt before TLS and say hello again.
      caps = await hello(s, lmtp, name);
    }
    if (caps) report.rawCapabilities = caps;
    await quit(s);
    return evaluateSmtp(caps, pre, target.ctx);
  });

async function quit(s: ProbeSession): Promise<void> {
  try {
    s.write('QUIT');
    await readReply(s, 'a reply to QUIT', 2000);
  } catch {
    /* done anyway */
  }
}
