/**
 * The migration lab: a source Dovecot with its Postfix MTA (mail for the domains arrives
 * over SMTP and is delivered by LMTP), and an empty destination Dovecot with a master user
 * `admin`, provisioned by appending to its passwd-file. Used by integration tests, the demo
 * and benchmarks.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import {
  startDovecot,
  type Credentials,
  type DovecotInstance,
  type DovecotQuirks,
  type MailboxLayout,
} from './dovecot.js';
import { startPostfix, type PostfixInstance } from './postfix.js';
import { makeTempDir, onProcessExit, removeDir } from './tmp.js';

export interface LabOptions {
  /** how the source's folders look to a client (default 'dovecot') */
  sourceLayout?: MailboxLayout;
  /** give the source a master user (true: admin with a random password) */
  sourceMaster?: Credentials | boolean;
  /** source accounts (default alice@ and bob@ the first domain) */
  users?: Credentials[];
  /** accounts that already exist on the destination (default none) */
  destinationUsers?: Credentials[];
  /** mail domains (default ["example.org"]) */
  domains?: string[];
  /** IMAPS/POP3S and STARTTLS on both Dovecots */
  tls?: boolean;
  destinationAppendLimit?: number;
  sourceQuirks?: DovecotQuirks;
  destinationQuirks?: DovecotQuirks;
}

export interface Lab {
  /** the lab's own dir (config, state, key, master password file) */
  dir: string;
  domains: string[];
  /** the source accounts */
  users: Credentials[];
  source: DovecotInstance;
  destination: DovecotInstance;
  /** the source's MTA */
  mta: PostfixInstance;
  /** the destination's master user and the file holding its password */
  destinationMaster: Credentials;
  masterPasswordFile: string;
  /** a new source account: in the source's passwd-file and accepted by its MTA */
  addSourceUser(user: string, password: string): Promise<void>;
  /** stop all servers and remove the lab dir; idempotent */
  stop(): Promise<void>;
}

const secret = (): string => randomBytes(12).toString('hex');

export async function startLab(opts: LabOptions = {}): Promise<Lab> {
  const domains = opts.domains ?? ['example.org'];
  const d0 = domains[0]!;
  const users = [
    ...(opts.users ?? [
      { user: `alice@${d0}`, password: 'alice-secret' },
      { user: `bob@${d0}`, password: 'bob-secret' },
    ]),
  ];
  const sourceMaster =
    opts.sourceMaster === true
      ? { user: 'admin', password: secret() }
      : opts.sourceMaster || undefined;
  const destinationMaster = { user: 'admin', password: secret() };
  const dir = makeTempDir('lab');
  const unregisterDir = onProcessExit(() => removeDir(dir));
  const masterPasswordFile = join(dir, 'destination-master.password');
  writeFileSync(masterPasswordFile, destinationMaster.password, { mode: 0o600 });

  const started: Array<{ stop(): Promise<void> }> = [];
  const stopAll = async (): Promise<void> => {
    await Promise.allSettled(started.reverse().map((s) => s.stop()));
  };
  try {
    const settled = await Promise.allSettled([
      startDovecot({
        name: 'source',
        users,
        layout: opts.sourceLayout ?? 'dovecot',
        master: sourceMaster,
        tls: opts.tls,
        quirks: opts.sourceQuirks,
      }),
      startDovecot({
        name: 'destination',
        users: opts.destinationUsers ?? [],
        layout: 'dovecot',
        master: destinationMaster,
        tls: opts.tls,
        appendLimit: opts.destinationAppendLimit,
        // Accounts the harness adds get the scheme AutoPort's provisioner writes.
        scheme: 'SHA512-CRYPT',
        quirks: opts.destinationQuirks,
      }),
    ]);
    for (const r of settled) if (r.status === 'fulfilled') started.push(r.value);
    for (const r of settled) if (r.status === 'rejected') throw r.reason;
    const [source, destination] = settled.map(
      (r) => (r as PromiseFulfilledResult<DovecotInstance>).value,
    ) as [DovecotInstance, DovecotInstance];
    const mta = await startPostfix({
      name: 'source',
      domains,
      lmtp: { host: source.host, port: source.ports.lmtp },
      users: users.map((u) => u.user),
    });
    started.push(mta);
    let stopping: Promise<void> | undefined;
    return {
      dir,
      domains,
      users,
      source,
      destination,
      mta,
      destinationMaster,
      masterPasswordFile,
      addSourceUser: async (user, password) => {
        await source.addUser(user, password);
        await mta.addUser(user);
        users.push({ user, password });
      },
      stop: () => {
        stopping ??= (async () => {
          await stopAll();
          unregisterDir();
          removeDir(dir);
        })();
        return stopping;
      },
    };
  } catch (err) {
    await stopAll();
    unregisterDir();
    removeDir(dir);
    throw err;
  }
}

/** The AutoPort configuration for a lab, as a plain object (the YAML's shape). */
export function labConfig(lab: Lab, dir = lab.dir): Record<string, unknown> {
  return {
    source: {
      imap: lab.source.urls.imap,
      pop3: lab.source.urls.pop3,
      smtp: lab.mta.url,
    },
    destination: {
      imap: lab.destination.urls.imap,
      smtp: lab.destination.urls.lmtp,
      provision: { kind: 'passwd-file', path: lab.destination.passwdFile, scheme: 'SHA512-CRYPT' },
      master: { user: lab.destinationMaster.user, passwordFile: lab.masterPasswordFile },
    },
    listen: { imap: '127.0.0.1:0', pop3: '127.0.0.1:0', smtp: '127.0.0.1:0' },
    domains: lab.domains,
    strategy: 'proxy',
    state: join(dir, 'state.json'),
    keyFile: join(dir, 'autoport.key'),
    // never the fixed default port: tests run side by side
    control: { metrics: '127.0.0.1:0' },
  };
}

/**
 * Write `autoport.yaml` for the lab into `dir` (default the lab's dir) and return its path.
 * The key file is not created: `autoport init` does that. `overrides` are merged on top
 * (one level deep), e.g. { strategy: 'immediate' }.
 */
export function writeLabConfig(
  lab: Lab,
  dir = lab.dir,
  overrides: Record<string, unknown> = {},
): string {
  const base = labConfig(lab, dir);
  for (const [k, v] of Object.entries(overrides)) {
    const cur = base[k];
    base[k] =
      v && typeof v === 'object' && !Array.isArray(v) && cur && typeof cur === 'object'
        ? { ...(cur as object), ...(v as object) }
        : v;
  }
  const file = join(dir, 'autoport.yaml');
  writeFileSync(file, `# AutoPort config for a test lab (test/support/lab.ts)\n${stringify(base)}`);
  return file;
}
