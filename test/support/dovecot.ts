/**
 * A real Dovecot 2.3 on free loopback ports in its own temp dir: IMAP, POP3 and LMTP (TCP),
 * optionally IMAPS/POP3S, users in a passwd-file, Maildir under the dir, its own base_dir so
 * several instances run side by side. Dovecot runs in the foreground (-F) as our child, so
 * we own its PID and stop() ends its whole process tree.
 */
import { execFile } from 'node:child_process';
import { chownSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { layoutNamespace, renderDovecotConf, type MailboxLayout } from './dovecot-conf.js';
import { ensureOsPackages } from './os-packages.js';
import { freePorts, isAddressInUse, LOOPBACK, releasePorts, waitForGreeting } from './ports.js';
import { startDaemon, type Daemon } from './process.js';
import { makeTempDir, onProcessExit, removeDir } from './tmp.js';
import { testTls } from './tls.js';

export type { MailboxLayout } from './dovecot-conf.js';

const run = promisify(execFile);

export interface Credentials {
  user: string;
  password: string;
}

/** Behaviour a test may bend to look like another server. */
export interface DovecotQuirks {
  /** mark Sent/Drafts/Trash/Junk/Archive with SPECIAL-USE attributes (default true) */
  specialUse?: boolean;
  /** replace the post-login CAPABILITY list (e.g. to hide CONDSTORE QRESYNC) */
  imapCapability?: string;
  /** Dovecot's delay after a failed login; default "2 secs" as shipped */
  authFailureDelay?: string;
  /** keep Dovecot's per-IP penalty after failed logins (2..15 s, all users); default off */
  authPenalty?: boolean;
  /** login_trusted_networks: who may forward a client IP with IMAP ID / XCLIENT */
  trustedNetworks?: string;
  /** mail_max_userip_connections for IMAP and POP3 (default 50; Dovecot ships 10) */
  maxUserIpConnections?: number;
  /** raw dovecot.conf text appended at the end (later settings win) */
  extraConfig?: string;
}

export interface DovecotOptions {
  /** short name, used in dir names, process titles and the greeting */
  name: string;
  users?: Credentials[];
  /** 'dovecot': '/' and no prefix; 'courier': '.' and "INBOX." (default 'dovecot') */
  layout?: MailboxLayout;
  /** a master user: log in as "user*master" with the master's password */
  master?: Credentials;
  /** also listen on IMAPS/POP3S and offer STARTTLS, with the tls.ts certificate */
  tls?: boolean;
  /** refuse APPEND (and LMTP delivery) of messages larger than this many bytes */
  appendLimit?: number;
  /** scheme for passwords the harness writes (default PLAIN; SHA512-CRYPT like AutoPort) */
  scheme?: 'PLAIN' | 'SHA512-CRYPT';
  quirks?: DovecotQuirks;
}

export interface DovecotPorts {
  imap: number;
  pop3: number;
  lmtp: number;
  imaps?: number;
  pop3s?: number;
}

export interface DovecotInstance {
  name: string;
  dir: string;
  host: string;
  ports: DovecotPorts;
  /** endpoint URLs in AutoPort's config syntax (src/core/config/endpoint.ts) */
  urls: { imap: string; pop3: string; lmtp: string; imaps?: string; pop3s?: string };
  confFile: string;
  logFile: string;
  passwdFile: string;
  masterPasswdFile?: string;
  master?: Credentials;
  layout: MailboxLayout;
  separator: string;
  prefix: string;
  tls?: { caFile: string; ca: string };
  /** the system user mail processes run as */
  mailUser: { name: string; uid: number; gid: number };
  /** master PID (our child) */
  pid: number;
  /** home dir of a user (Maildir is `${homeOf(u)}/Maildir`) */
  homeOf(user: string): string;
  /** server mailbox name for a '/'-separated path ("INBOX" stays "INBOX") */
  mailboxName(path: string): string;
  /** add a user to the passwd-file and wait until Dovecot knows it */
  addUser(user: string, password: string): Promise<void>;
  /** run doveadm against this instance; resolves with stdout, rejects with stderr */
  doveadm(args: string[]): Promise<string>;
  /** master PID and every process it forked */
  pids(): number[];
  running(): boolean;
  /** stop Dovecot (whole process tree) and remove the dir; idempotent */
  stop(): Promise<void>;
}

const MAIL_USER = 'mail';

function systemUser(name: string): { name: string; uid: number; gid: number } {
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const f = line.split(':');
    if (f[0] === name) return { name, uid: Number(f[2]), gid: Number(f[3]) };
  }
  throw new Error(
    `system user "${name}" not found; Dovecot's mail processes need it (adduser --system ${name})`,
  );
}

function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function checkField(what: string, value: string): void {
  // passwd-file is ':'-separated, one user per line.
  if (/[:\r\n\0]/.test(value) || value === '') {
    throw new Error(
      `${what} "${value}" cannot go into a Dovecot passwd-file (empty, or has ':' or a line break)`,
    );
  }
}

async function hashPassword(password: string, scheme: 'PLAIN' | 'SHA512-CRYPT'): Promise<string> {
  if (scheme === 'PLAIN') return `{PLAIN}${password}`;
  const { stdout } = await run('doveadm', ['pw', '-s', scheme, '-p', password]);
  return stdout.trim();
}

/** Append lines atomically (write a temp file, rename): Dovecot never sees half a line. */
function appendAtomically(file: string, text: string): void {
  let old = '';
  try {
    old = readFileSync(file, 'utf8');
  } catch {
    /* new file */
  }
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, old + text, { mode: 0o640 });
  renameSync(tmp, file);
}

async function passwdLines(
  users: Credentials[],
  scheme: 'PLAIN' | 'SHA512-CRYPT',
): Promise<string> {
  let out = '';
  for (const u of users) {
    checkField('user name', u.user);
    checkField('password', u.password);
    out += `${u.user}:${await hashPassword(u.password, scheme)}::::::\n`;
  }
  return out;
}

export async function startDovecot(opts: DovecotOptions): Promise<DovecotInstance> {
  ensureOsPackages();
  const layout = opts.layout ?? 'dovecot';
  const scheme = opts.scheme ?? 'PLAIN';
  const tls = opts.tls ? await testTls() : undefined;
  const mailUser = systemUser(MAIL_USER);
  const dir = makeTempDir(`dovecot-${opts.name}`);
  const unregisterDir = onProcessExit(() => removeDir(dir));
  const homeRoot = join(dir, 'home');
  mkdirSync(homeRoot);
  chownSync(homeRoot, mailUser.uid, mailUser.gid);
  const passwdFile = join(dir, 'users.passwd');
  appendAtomically(passwdFile, await passwdLines(opts.users ?? [], scheme));
  let masterPasswdFile: string | undefined;
  if (opts.master) {
    masterPasswdFile = join(dir, 'masters.passwd');
    appendAtomically(masterPasswdFile, await passwdLines([opts.master], scheme));
  }
  const confFile = join(dir, 'dovecot.conf');
  const logFile = join(dir, 'dovecot.log');
  const q = opts.quirks ?? {};

  let daemon: Daemon | undefined;
  let ports: DovecotPorts | undefined;
  for (let attempt = 1; !daemon; attempt++) {
    const [imap, pop3, lmtp, imaps, pop3s] = await freePorts(tls ? 5 : 3);
    ports = {
      imap: imap!,
      pop3: pop3!,
      lmtp: lmtp!,
      ...(tls ? { imaps: imaps!, pop3s: pop3s! } : {}),
    };
    writeFileSync(
      confFile,
      renderDovecotConf({
        name: opts.name,
        dir,
        baseDir: join(dir, 'run'),
        stateDir: join(dir, 'state'),
        logFile,
        homeRoot,
        passwdFile,
        masterFile: masterPasswdFile,
        layout,
        ports,
        tls: tls ? { certFile: tls.certFile, keyFile: tls.keyFile } : undefined,
        appendLimit: opts.appendLimit,
        mailUser,
        specialUse: q.specialUse ?? true,
        imapCapability: q.imapCapability,
        authFailureDelay: q.authFailureDelay ?? '2 secs',
        authPenalty: q.authPenalty ?? false,
        trustedNetworks: q.trustedNetworks,
        maxUserIpConnections: q.maxUserIpConnections ?? 50,
        extraConfig: q.extraConfig,
      }),
    );
    const started = startDaemon('dovecot', ['-F', '-c', confFile], join(dir, 'dovecot.stderr.log'));
    try {
      const alive = (): boolean => started.running();
      await waitForGreeting(ports.imap, /^\* OK/, { alive });
      await waitForGreeting(ports.pop3, /^\+OK/, { alive });
      await waitForGreeting(ports.lmtp, /^220 /, { alive });
      daemon = started;
    } catch (err) {
      await started.stop();
      releasePorts(Object.values(ports));
      const log = `${tail(join(dir, 'dovecot.stderr.log'))}\n${tail(logFile)}`;
      if (attempt < 4 && isAddressInUse(log)) continue;
      unregisterDir();
      removeDir(dir);
      throw new Error(`Dovecot "${opts.name}" did not start: ${(err as Error).message}\n${log}`);
    }
  }

  const ns = layoutNamespace(layout);
  const host = LOOPBACK;
  const doveadm = async (args: string[]): Promise<string> => {
    try {
      const { stdout } = await run('doveadm', ['-c', confFile, ...args], {
        maxBuffer: 64 * 1024 * 1024,
      });
      return stdout;
    } catch (err) {
      const e = err as { stderr?: string; code?: number; message: string };
      const wrapped = new Error(
        `doveadm ${args.join(' ')} failed (exit ${e.code}): ${e.stderr?.trim() || e.message}`,
      );
      Object.assign(wrapped, { exitCode: e.code });
      throw wrapped;
    }
  };
  // Dovecot re-reads a changed passwd-file at most once a second; poll the auth process
  // (lookups, which have no failure delay) until both passdb and userdb see the user.
  const waitForUser = async (user: string): Promise<void> => {
    const deadline = Date.now() + 3000;
    for (;;) {
      try {
        await doveadm(['auth', 'lookup', user]);
        await doveadm(['user', user]);
        return;
      } catch (err) {
        if (Date.now() > deadline)
          throw new Error(
            `Dovecot "${opts.name}" does not see new user ${user}: ${(err as Error).message}`,
          );
        await sleep(150);
      }
    }
  };
  const d = daemon;
  const p = ports!;
  let stopping: Promise<void> | undefined;
  const inst: DovecotInstance = {
    name: opts.name,
    dir,
    host,
    ports: p,
    urls: {
      imap: `imap://${host}:${p.imap}?tls=none`,
      pop3: `pop3://${host}:${p.pop3}?tls=none`,
      lmtp: `lmtp://${host}:${p.lmtp}`,
      ...(p.imaps ? { imaps: `imaps://${host}:${p.imaps}` } : {}),
      ...(p.pop3s ? { pop3s: `pop3s://${host}:${p.pop3s}` } : {}),
    },
    confFile,
    logFile,
    passwdFile,
    masterPasswdFile,
    master: opts.master,
    layout,
    separator: ns.separator,
    prefix: ns.prefix,
    tls: tls ? { caFile: tls.caFile, ca: tls.ca } : undefined,
    mailUser,
    pid: d.pid,
    homeOf: (user) => join(homeRoot, user.toLowerCase()),
    mailboxName: (path) =>
      path === 'INBOX' ? 'INBOX' : ns.prefix + path.split('/').join(ns.separator),
    addUser: async (user, password) => {
      appendAtomically(passwdFile, await passwdLines([{ user, password }], scheme));
      await waitForUser(user);
    },
    doveadm,
    pids: () => d.pids(),
    running: () => d.running(),
    stop: () => {
      stopping ??= (async () => {
        await d.stop();
        releasePorts(Object.values(p));
        unregisterDir();
        removeDir(dir);
      })();
      return stopping;
    },
  };
  return inst;
}
