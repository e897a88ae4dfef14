/**
 * The mail servers behind the soak's gateway, from the test harness: the migration lab
 * (source and destination Dovecot with TLS, the source's Postfix) plus a Postfix submission
 * service checking the source's passwords over SASL, and the soak's accounts:
 *   captured:    on the source, logged in once through the gateway before the soak
 *   migrated:    on the destination, recorded as migrated in the gateway's state
 *   first-login: on the source, never seen by the gateway (each used once, then captured)
 *   victims:     on the source, only ever given wrong passwords by hostile clients
 * Dovecot is sized for thousands of idle sessions (several clients per imap process) so
 * the soak measures the gateway and not Dovecot's process limits.
 */
import { freePort, startLab, type Lab, type PostfixInstance } from '../../test/support/index.js';
import { saslListener, startSubmissionMta } from '../../test/integration/smtp-support.js';
import type { Account } from './clients.js';
import { Wire } from './wire.js';

const DOMAIN = 'example.org';

export interface SoakAccounts {
  captured: Account[];
  migrated: Account[];
  firstLogin: Account[];
  victims: string[];
}

export interface SoakServers {
  lab: Lab;
  submission: PostfixInstance;
  accounts: SoakAccounts;
  stop(): Promise<void>;
}

const accounts = (prefix: string, n: number): Account[] =>
  Array.from({ length: n }, (_, i) => ({
    user: `${prefix}${i}@${DOMAIN}`,
    password: `${prefix}-pw-${i}`,
  }));

function dovecotTuning(saslPort: number | undefined, idle: number): string {
  const sessions = idle + 2000;
  return [
    ...(saslPort ? [saslListener(saslPort)] : []),
    `default_process_limit = 2000`,
    `default_client_limit = ${sessions * 2}`,
    `default_vsz_limit = 1G`,
    // Up to 50 clients per imap/pop3 process (service_count 0: a process is not used up by
    // its first client): 5,000 idle sessions are about 100 processes, not 5,000.
    `service imap {\n  service_count = 0\n  client_limit = 50\n  process_limit = ${Math.ceil(sessions / 25)}\n}`,
    `service pop3 {\n  service_count = 0\n  client_limit = 50\n}`,
    `service anvil {\n  client_limit = ${sessions * 2}\n}`,
    `service auth {\n  client_limit = ${sessions * 2}\n}`,
  ].join('\n');
}

/** Deliver `message` to every recipient over LMTP (RFC 2033), in batches of 50. */
async function lmtpDeliver(
  port: number,
  rcpts: string[],
  message: string,
  ca: string,
): Promise<void> {
  for (let i = 0; i < rcpts.length; i += 50) {
    const batch = rcpts.slice(i, i + 50);
    const w = await Wire.open({ port, ca, timeoutMs: 60_000 });
    const bad = /^[45]\d\d/;
    try {
      await w.until(/^220 /, bad);
      await w.cmd('lhlo', 'LHLO soak.test', /^250 /, bad);
      await w.cmd('mail', 'MAIL FROM:<loader@soak.test>', /^250 /, bad);
      for (const r of batch) await w.cmd('rcpt', `RCPT TO:<${r}>`, /^250 /, bad);
      await w.cmd('data', 'DATA', /^354 /, bad);
      w.write(`${message}\r\n.\r\n`);
      w.step = 'delivery';
      for (const _ of batch) await w.until(/^250 /, bad);
      await w.cmd('quit', 'QUIT', /^221 /);
    } finally {
      w.close();
    }
  }
}

export async function startServers(opts: {
  captured: number;
  migrated: number;
  firstLogin: number;
  victims: number;
  idle: number;
}): Promise<SoakServers> {
  const acc: SoakAccounts = {
    captured: accounts('cap', opts.captured),
    migrated: accounts('mig', opts.migrated),
    firstLogin: accounts('new', opts.firstLogin),
    victims: accounts('victim', opts.victims).map((a) => a.user),
  };
  const sourceUsers = [...acc.captured, ...acc.firstLogin, ...accounts('victim', opts.victims)];
  const sasl = await freePort();
  const lab = await startLab({
    users: sourceUsers,
    destinationUsers: acc.migrated,
    tls: true,
    sourceQuirks: {
      maxUserIpConnections: 100_000,
      extraConfig: dovecotTuning(sasl, opts.idle),
    },
    destinationQuirks: {
      maxUserIpConnections: 100_000,
      extraConfig: dovecotTuning(undefined, opts.idle),
    },
  });
  let submission: PostfixInstance;
  try {
    submission = await startSubmissionMta('soaksub', lab.source, sasl, lab, sourceUsers);
    const ca = lab.source.tls!.ca;
    for (let n = 1; n <= 2; n++) {
      const msg = (to: string): string =>
        `From: <loader@soak.test>\r\nTo: <${to}>\r\nSubject: welcome ${n}\r\nMessage-ID: <load-${n}@soak.test>\r\n\r\n${'Mail that was there before the soak.\r\n'.repeat(20)}`;
      await lmtpDeliver(
        lab.source.ports.lmtp,
        acc.captured.map((a) => a.user),
        msg('captured'),
        ca,
      );
      await lmtpDeliver(
        lab.destination.ports.lmtp,
        acc.migrated.map((a) => a.user),
        msg('migrated'),
        ca,
      );
    }
  } catch (err) {
    await lab.stop();
    throw err;
  }
  return {
    lab,
    submission,
    accounts: acc,
    stop: async () => {
      await submission.stop();
      await lab.stop();
    },
  };
}
