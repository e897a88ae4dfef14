/**
 * A PostgreSQL of the test's own, from Debian's postgresql package: initdb in a temp dir,
 * postgres on a free loopback port, trust authentication on loopback only. As root it runs
 * as nobody (uid 65534) through setpriv, since postgres refuses to run as root. With
 * AUTOPORT_TEST_PG_URL set, that server is used instead (each test gets its own database).
 */
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { freePort, LOOPBACK } from './ports.js';
import { startDaemon, type Daemon } from './process.js';
import { makeTempDir, removeDir } from './tmp.js';

export interface PostgresInstance {
  /** a URL to a fresh, empty database */
  url: string;
  stop(): Promise<void>;
}

const NOBODY = 65534;

export function postgresBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'postgres')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(root, versions[0], 'bin') : undefined;
}

function asUser(cmd: string, args: string[]): [string, string[]] {
  if (process.getuid?.() !== 0) return [cmd, args];
  return [
    'setpriv',
    [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--', cmd, ...args],
  ];
}

export async function startPostgres(): Promise<PostgresInstance> {
  const given = process.env.AUTOPORT_TEST_PG_URL;
  if (given) return freshDatabase(given, async () => undefined);
  const bin = postgresBinDir();
  if (!bin) throw new Error('PostgreSQL is not installed (apt-get install postgresql)');
  const dir = makeTempDir('ap-pg-');
  const data = join(dir, 'data');
  if (process.getuid?.() === 0) chownSync(dir, NOBODY, NOBODY);
  const [initCmd, initArgs] = asUser(join(bin, 'initdb'), [
    '-D',
    data,
    '-U',
    'autoport',
    '--auth=trust',
    '--no-sync',
    '-E',
    'UTF8',
  ]);
  execFileSync(initCmd, initArgs, { stdio: 'ignore', cwd: dir });
  const port = await freePort();
  const [cmd, args] = asUser(join(bin, 'postgres'), [
    '-D',
    data,
    '-h',
    LOOPBACK,
    '-p',
    String(port),
    '-k',
    dir,
    '-c',
    'fsync=on',
  ]);
  const daemon = startDaemon(cmd, args, join(dir, 'postgres.log'));
  const admin = `postgresql://autoport@${LOOPBACK}:${port}/postgres`;
  await waitReady(admin, daemon);
  return freshDatabase(admin, async () => {
    await daemon.stop();
    removeDir(dir);
  });
}

async function waitReady(url: string, daemon: Daemon): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const c = new pg.Client({ connectionString: url });
    try {
      await c.connect();
      await c.end();
      return;
    } catch (err) {
      await c.end().catch(() => undefined);
      if (!daemon.running() || Date.now() > deadline) throw err;
      await sleep(100);
    }
  }
}

let databases = 0;

/** A new database on the server at `adminUrl`, so tests never share state. */
async function freshDatabase(
  adminUrl: string,
  stopServer: () => Promise<void>,
): Promise<PostgresInstance> {
  const name = `autoport_test_${process.pid}_${++databases}_${Date.now()}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return { url: u.toString(), stop: stopServer };
}
