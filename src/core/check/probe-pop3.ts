/** POP3 probe: greeting, CAPA, STLS, CAPA again, QUIT. No login. */
import { hostPort } from '../config/endpoint.js';
import { evaluatePop3 } from './meanings-pop3.js';
import { fail, guessProtocol, noStartTls, runProbe, upgrade, type Probe } from './probe.js';
import type { ProbeSession } from './session.js';

/** CAPA (RFC 2449 5): undefined when the server answers -ERR (an RFC 1939-only server). */
async function capa(s: ProbeSession): Promise<string[] | undefined> {
  s.write('CAPA');
  const status = await s.readLine('a reply to CAPA');
  if (/^-ERR\b/i.test(status)) return undefined;
  if (!/^\+OK\b/i.test(status))
    fail(
      'EPROTOCOL',
      `unexpected reply to CAPA: "${status}"`,
      'this server is not usable as a POP3 endpoint',
    );
  const caps: string[] = [];
  for (;;) {
    const line = await s.readLine('the rest of the CAPA list');
    if (line === '.') return caps;
    // RFC 1939 3: a line starting with "." is byte-stuffed.
    caps.push(line.startsWith('.') ? line.slice(1) : line);
    if (caps.length > 200)
      fail(
        'EPROTOCOL',
        'the CAPA list does not end',
        'this server is not usable as a POP3 endpoint',
      );
  }
}

export const probePop3: Probe = (target, opts) =>
  runProbe(target, opts, async (s, report) => {
    const ep = target.endpoint;
    const greeting = await s.readLine('a greeting', opts.timeouts.greetingMs);
    report.greeting = greeting;
    if (/^-ERR\b/i.test(greeting)) {
      fail(
        'EREFUSED',
        `the server refused the connection: "${greeting}"`,
        'the server may limit connections from this address, or be shutting down',
      );
    }
    if (!/^\+OK\b/i.test(greeting)) {
      fail(
        'EGREETING',
        `unexpected greeting "${greeting}": not a POP3 server`,
        guessProtocol(greeting),
      );
    }
    let caps = await capa(s);
    let pre: string[] | undefined;
    if (ep.tls === 'starttls') {
      pre = caps ?? [];
      report.preTlsCapabilities = pre;
      // Without CAPA there is no way to know; STLS itself answers the question.
      if (caps && !caps.some((c) => c.toUpperCase() === 'STLS'))
        noStartTls(s, 'STLS', `pop3s://${hostPort({ host: ep.host, port: 995 })}`);
      s.write('STLS');
      const reply = await s.readLine('a reply to STLS');
      if (!caps && /^-ERR\b/i.test(reply))
        noStartTls(s, 'STLS', `pop3s://${hostPort({ host: ep.host, port: 995 })}`);
      // RFC 2595 4: one +OK line, then the TLS negotiation begins.
      await upgrade(s, 'STLS', reply, /^\+OK\b/i.test(reply));
      caps = await capa(s);
    }
    if (caps) report.rawCapabilities = caps;
    await quit(s);
    return evaluatePop3(caps, pre, target.ctx);
  });

async function quit(s: ProbeSession): Promise<void> {
  try {
    s.write('QUIT');
    await s.readLine('a reply to QUIT', 2000);
  } catch {
    /* done anyway */
  }
}
