/**
 * What the SMTP gateway tests share: a lab whose Dovecots also serve SASL over TCP (so a
 * real Postfix can be a submission service checking their passwords), the gateway's SMTP
 * listeners started on it, and reading mail back over IMAP. Wire helpers: smtp-wire.ts.
 */
import { execFile } from 'node:child_process';
import { utimesSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { EventBus, type GatewayEvent } from '../../src/core/bus.js';
import { parseEndpoint } from '../../src/core/config/endpoint.js';
import type { Config } from '../../src/core/config/types.js';
import {
  startSmtpListeners,
  openRelayLog,
  RELAY_LOG_FILE,
  type RunningSmtpListener,
  type SmtpFrontendDeps,
} from '../../src/core/smtp/index.js';
import { Brakes } from '../../src/core/login/brakes.js';
import { DEFAULT_LIMITS } from '../../src/core/limits.js';
import { createLogger, memorySink } from '../../src/core/log/index.js';
import {
  generateKeyFile,
  loadKeyring,
  openJsonStore,
  readEventLog,
  type JsonStore,
  type Keyring,
} from '../../src/core/state/index.js';
import {
  freePort,
  LOOPBACK,
  makeTempDir,
  onProcessExit,
  openImap,
  removeDir,
  startLab,
  startPostfix,
  testTls,
  type Credentials,
  type DovecotInstance,
  type Lab,
  type LabOptions,
  type PostfixInstance,
} from '../support/index.js';

const run = promisify(execFile);

/** dovecot.conf lines for a SASL listener Postfix can use (smtpd_sasl_type = dovecot). */
export function saslListener(port: number): string {
  return `service auth {\n  inet_listener sasl {\n    address = ${LOOPBACK}\n    port = ${port}\n  }\n}\n`;
}

/** Change a running Postfix's main.cf (and optionally master.cf) and reload it. */
export async function reconfigurePostfix(
  mta: PostfixInstance,
  settings: string[],
  services: string[] = [],
): Promise<void> {
  const etc = join(mta.dir, 'etc');
  await run('postconf', ['-c', etc, '-e', ...settings]);
  for (const s of services) await run('postconf', ['-c', etc, '-M', s]);
  // Postfix waits until a config file is a second old before it reads it.
  const past = new Date(Date.now() - 2000);
  for (const f of ['main.cf', 'master.cf']) utimesSync(join(etc, f), past, past);
  await mta.postfix(['reload']);
  await new Promise((r) => setTimeout(r, 1200));
}

export interface SmtpLab {
  lab: Lab;
  /** SASL ports of the source and destination Dovecot */
  sasl: { source: number; destination: number };
  stop(): Promise<void>;
}

export async function startSmtpLab(opts: LabOptions = {}): Promise<SmtpLab> {
  const sasl = { source: await freePort(), destination: await freePort() };
  const lab = await startLab({
    ...opts,
    sourceQuirks: {
      authFailureDelay: '0',
      ...opts.sourceQuirks,
      extraConfig: saslListener(sasl.source),
    },
    destinationQuirks: {
      authFailureDelay: '0',
      ...opts.destinationQuirks,
      extraConfig: saslListener(sasl.destination),
    },
  });
  return { lab, sasl, stop: () => lab.stop() };
}

/**
 * A Postfix submission service: AUTH checked by `dovecot`'s passwords over SASL, STARTTLS
 * with the test certificate, XCLIENT from loopback, delivering the domains to its LMTP.
 */
export async function startSubmissionMta(
  name: string,
  dovecot: DovecotInstance,
  saslPort: number,
  lab: Lab,
  users: Credentials[],
): Promise<PostfixInstance> {
  const tls = await testTls();
  const mta = await startPostfix({
    name,
    domains: lab.domains,
    lmtp: { host: dovecot.host, port: dovecot.ports.lmtp },
    users: users.map((u) => u.user),
  });
  try {
    await reconfigurePostfix(
      mta,
      [
        'smtpd_sasl_auth_enable=yes',
        'smtpd_sasl_type=dovecot',
        `smtpd_sasl_path=inet:${LOOPBACK}:${saslPort}`,
        'smtpd_relay_restrictions=permit_sasl_authenticated, reject_unauth_destination',
        'smtpd_authorized_xclient_hosts=127.0.0.1',
        `smtpd_tls_cert_file=${tls.certFile}`,
        `smtpd_tls_key_file=${tls.keyFile}`,
        'smtpd_tls_security_level=may',
      ],
      ['tlsmgr/unix=tlsmgr unix - - n 1000? 1 tlsmgr'],
    );
  } catch (err) {
    await mta.stop();
    throw err;
  }
  return mta;
}

export interface GatewayOptions {
  /** endpoint URLs; default: the lab's MTA and the destination's LMTP */
  sourceSmtp?: string | null;
  destinationSmtp?: string | null;
  sourceSubmission?: string;
  destinationSubmission?: string;
  /** listeners: default smtp only */
  listen?: Array<'smtp' | 'submission' | 'submissions'>;
  tls?: boolean;
  deps?: Partial<SmtpFrontendDeps>;
  timeouts?: Partial<Config['timeouts']>;
  brakes?: Partial<typeof DEFAULT_LIMITS.brakes>;
}

export interface TestGateway {
  config: Config;
  store: JsonStore;
  keyring: Keyring;
  brakes: Brakes;
  bus: EventBus;
  events: GatewayEvent[];
  logText(): string;
  port(name?: 'smtp' | 'submission' | 'submissions'): number;
  relayLog(): Promise<Array<Record<string, unknown>>>;
  listeners: RunningSmtpListener[];
  stop(): Promise<void>;
}

/** The parts of a lab the gateway's config is made from (fault tests pass stand-ins). */
export interface GatewayLab {
  domains: string[];
  source: { urls: { imap: string } };
  destination: { urls: { imap: string; lmtp: string } };
  mta: { url: string };
}

export async function startGatewaySmtp(
  lab: GatewayLab,
  o: GatewayOptions = {},
): Promise<TestGateway> {
  const dir = makeTempDir('smtp-gw');
  const unregister = onProcessExit(() => removeDir(dir));
  const tls = o.tls ? await testTls() : undefined;
  const ep = (u: string | undefined | null) => (u ? parseEndpoint(u) : undefined);
  const listen: Config['listen'] = {};
  for (const l of o.listen ?? ['smtp']) listen[l] = { host: LOOPBACK, port: 0 };
  const config: Config = {
    file: join(dir, 'autoport.yaml'),
    source: {
      useImap: true,
      imap: parseEndpoint(lab.source.urls.imap),
      smtp: ep(o.sourceSmtp === undefined ? lab.mta.url : o.sourceSmtp),
      submission: ep(o.sourceSubmission),
    },
    destination: {
      imap: parseEndpoint(lab.destination.urls.imap),
      smtp: ep(o.destinationSmtp === undefined ? lab.destination.urls.lmtp : o.destinationSmtp),
      submission: ep(o.destinationSubmission),
      provision: { kind: 'none' },
    },
    listen,
    tls: tls ? { cert: tls.certFile, key: tls.keyFile } : undefined,
    domains: lab.domains,
    strategy: 'proxy',
    state: join(dir, 'state.json'),
    stateDir: dir,
    keyFile: join(dir, 'autoport.key'),
    logDir: join(dir, 'log'),
    transfer: { connections: 2, concurrency: 2 },
    timeouts: {
      connectMs: 3000,
      greetingMs: 5000,
      commandMs: 10_000,
      idleMs: 60_000,
      ...o.timeouts,
    },
  };
  await generateKeyFile(config.keyFile);
  const keyring = loadKeyring(config.keyFile);
  const store = await openJsonStore(config.state);
  const relayLog = await openRelayLog(config.logDir, { flushDelayMs: 5 });
  const bus = new EventBus();
  const events: GatewayEvent[] = [];
  bus.onAny((e) => events.push(e));
  const sink = memorySink();
  const brakes = new Brakes({ ...DEFAULT_LIMITS.brakes, failureDelayMs: 300, ...o.brakes });
  const listeners = await startSmtpListeners({
    config: () => config,
    store,
    relayLog,
    bus,
    logger: createLogger({ sink, format: 'json', level: 'debug' }),
    keyring,
    brakes,
    ca: tls?.ca ?? (await testTls()).ca,
    hostname: 'gateway.test',
    ...o.deps,
  });
  let stopped = false;
  return {
    config,
    store,
    keyring,
    brakes,
    bus,
    events,
    listeners,
    logText: () => sink.text(),
    port(name = 'smtp') {
      const l = listeners.find((x) => x.name === name);
      if (!l) throw new Error(`no ${name} listener`);
      return l.address.port;
    },
    async relayLog() {
      await relayLog.flush();
      const out: Array<Record<string, unknown>> = [];
      for await (const e of readEventLog(join(config.logDir, RELAY_LOG_FILE)))
        out.push(e as Record<string, unknown>);
      return out;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await Promise.all(listeners.map((l) => l.close(0)));
      await relayLog.close();
      await store.close();
      unregister();
      removeDir(dir);
    },
  };
}

/** Every message in a user's INBOX, as text. */
export async function inbox(server: DovecotInstance, creds: Credentials): Promise<string[]> {
  const client = await openImap(server, creds);
  try {
    const lock = await client.getMailboxLock('INBOX');
    try {
      const out: string[] = [];
      if ((client.mailbox && typeof client.mailbox === 'object' ? client.mailbox.exists : 0) === 0)
        return out;
      for await (const m of client.fetch('1:*', { source: true }))
        out.push(m.source?.toString('utf8') ?? '');
      return out;
    } finally {
      lock.release();
    }
  } finally {
    await client.logout().catch(() => undefined);
  }
}

/** Poll a mailbox until `pred` holds (the source's Postfix delivers asynchronously). */
export async function waitForInbox(
  server: DovecotInstance,
  creds: Credentials,
  pred: (msgs: string[]) => boolean,
  timeoutMs = 15_000,
): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  let msgs: string[] = [];
  let lastError: unknown;
  while (Date.now() < deadline) {
    // A poll's own IMAP connection can be dropped while Dovecot is busy delivering to
    // the same mailbox; that says nothing about the mail, so poll again until the deadline.
    try {
      msgs = await inbox(server, creds);
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (pred(msgs)) return msgs;
    await new Promise((r) => setTimeout(r, 200));
  }
  if (lastError) throw lastError;
  return msgs;
}

/** A small RFC 5322 message with a unique marker in the Subject. */
export function mail(from: string, to: string, marker: string, extra = ''): string {
  return `From: <${from}>\r\nTo: <${to}>\r\nSubject: ${marker}\r\nMessage-ID: <${marker}@test>\r\n${extra}\r\nbody of ${marker}\r\n`;
}

export function count(msgs: string[], marker: string): number {
  return msgs.filter((m) => m.includes(`Subject: ${marker}`)).length;
}

export { makeTempDir, removeDir };
export { SmtpDialog, smtpTranscript, startStandIn, type StandInScript } from './smtp-wire.js';
