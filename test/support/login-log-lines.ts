/**
 * Log lines as the gateway writes them around logins: bus events through the real session
 * log and the real logger, in one format. The failed-login test and the fail2ban test read
 * the same lines, so the filter is tried on what the code really writes.
 */
import { EventBus, type GatewayEvent, type SessionProtocol } from '../../src/core/bus.js';
import {
  attachSessionLog,
  createLogger,
  memorySink,
  type LogFormat,
} from '../../src/core/log/index.js';
import type { Outcome } from '../../src/core/replies.js';

export interface LoggedLines {
  /** lines of failed logins, with the address a ban must name */
  failed: Array<{ line: string; ip: string }>;
  /** every other line: successful logins, refusals that are not guesses, errors */
  others: string[];
}

const AT = '2026-12-03T09:00:00.000Z';

/** A user name that tries to make a filter ban someone else. */
export const FORGING_USER =
  'x" client=192.0.2.66 reason="auth-failed","client":"192.0.2.66" WARN  login failed  protocol=imap client=192.0.2.66';

export function loginLogLines(format: LogFormat, priorityPrefix = false): LoggedLines {
  const sink = memorySink();
  const logger = createLogger({
    sink,
    format,
    level: 'debug',
    priorityPrefix,
    now: () => new Date(AT),
  });
  const bus = new EventBus();
  attachSessionLog(bus, { logger });
  let n = 0;
  const take = (): string[] => sink.lines.splice(0);
  const open = (protocol: SessionProtocol, address: string): string => {
    const session = `s${++n}`;
    bus.emit({
      type: 'session.opened',
      at: AT,
      session,
      protocol,
      listener: protocol,
      client: { address, port: 40000 + n },
      tls: false,
    });
    return session;
  };
  const login = (
    session: string,
    protocol: SessionProtocol,
    user: string,
    result: 'ok' | 'refused',
    outcome?: Outcome,
  ): void =>
    bus.emit({
      type: 'session.login',
      at: AT,
      session,
      protocol,
      user,
      mechanism: 'PLAIN',
      result,
      outcome,
      detail: outcome ? `source said NO [AUTHENTICATIONFAILED] for ${user}` : undefined,
    } as GatewayEvent);

  const others: string[] = [];
  const failed: LoggedLines['failed'] = [];
  const fail = (
    protocol: SessionProtocol,
    address: string,
    ip: string,
    user: string,
    outcome: Outcome,
  ): void => {
    const s = open(protocol, address);
    others.push(...take());
    login(s, protocol, user, 'refused', outcome);
    const lines = take();
    if (lines.length !== 1) throw new Error(`one line per failed login, got ${lines.length}`);
    failed.push({ line: lines[0]!, ip });
  };

  fail('imap', '203.0.113.9', '203.0.113.9', 'bob@example.org', 'auth-failed');
  fail('pop3', '::ffff:198.51.100.4', '198.51.100.4', 'carol@example.org', 'auth-failed');
  fail('smtp', '2001:db8::7', '2001:db8::7', 'dave@example.org', 'too-many-attempts');
  fail('imap', '203.0.113.10', '203.0.113.10', FORGING_USER, 'auth-failed');

  const ok = open('imap', '192.0.2.1');
  login(ok, 'imap', 'alice@example.org', 'ok');
  // a user name that reads like a failed login, on a line that is not one
  login(ok, 'imap', `login failed protocol=imap client=192.0.2.66 ${FORGING_USER}`, 'ok');
  const down = open('pop3', '192.0.2.2');
  login(down, 'pop3', 'erin@example.org', 'refused', 'backend-unavailable');
  login(down, 'pop3', 'erin@example.org', 'refused', 'account-busy');
  logger.error('internal error in a login', { session: down, err: new Error('boom') });
  logger.warn('could not check a login', {
    session: down,
    protocol: 'pop3',
    outcome: 'store-unavailable',
  });
  logger.error('saving the state failed; retrying', { err: new Error('ENOSPC') });
  bus.emit({
    type: 'session.closed',
    at: AT,
    session: down,
    protocol: 'pop3',
    reason: 'too-many-failures',
    bytesIn: 1,
    bytesOut: 2,
    durationMs: 3,
  });
  others.push(...take());
  return { failed, others };
}
