#!/usr/bin/env node
// Sets up what `npm test` and `npm run demo` need on a fresh machine: npm packages, then the
// OS packages of the real mail servers the tests drive. Installs them when running as root on
// Debian/Ubuntu; otherwise stops with the exact command to run. Plain JS, no dependencies:
// it runs before node_modules exists.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** binary -> Debian package that provides it */
export const OS_PACKAGES = {
  '/usr/sbin/dovecot': 'dovecot-imapd',
  '/usr/lib/dovecot/pop3': 'dovecot-pop3d',
  '/usr/lib/dovecot/lmtp': 'dovecot-lmtpd',
  '/usr/sbin/postfix': 'postfix',
  '/usr/bin/openssl': 'openssl',
  '/usr/bin/curl': 'curl',
  '/usr/bin/swaks': 'swaks',
  '/usr/bin/fetchmail': 'fetchmail',
  '/usr/bin/mbsync': 'isync',
  '/usr/bin/python3': 'python3',
};

function log(msg) {
  process.stderr.write(`[ensure-deps] ${msg}\n`);
}

function ensureNpm() {
  // Installed packages are current when they were installed from this very lockfile: compare a
  // hash of it (mtimes lie: `npm install` writes the lockfile after node_modules).
  const lockHash = createHash('sha256')
    .update(readFileSync(join(root, 'package-lock.json')))
    .digest('hex');
  const stamp = join(root, 'node_modules', '.autoport-lock-sha256');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === lockHash) return;
  log('installing npm packages (npm ci)');
  const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    log('npm ci failed; check network access to the npm registry and run `npm ci` by hand');
    process.exit(1);
  }
  writeFileSync(stamp, `${lockHash}\n`);
}

export function missingOsPackages() {
  return [
    ...new Set(
      Object.entries(OS_PACKAGES)
        .filter(([bin]) => !existsSync(bin))
        .map(([, pkg]) => pkg),
    ),
  ];
}

function ensureOs() {
  const missing = missingOsPackages();
  if (missing.length === 0) return;
  const cmd = `apt-get install -y ${missing.join(' ')}`;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot || !existsSync('/usr/bin/apt-get')) {
    log(`missing OS packages: ${missing.join(', ')}`);
    log(`install them (as root on Debian/Ubuntu): ${cmd}`);
    process.exit(1);
  }
  log(`installing OS packages: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  // Postfix asks debconf questions on install; answer "No configuration": the tests write their own.
  try {
    execFileSync('debconf-set-selections', [], {
      input: 'postfix postfix/main_mailer_type select No configuration\n',
      env,
    });
  } catch {
    /* debconf missing: apt falls back to defaults under noninteractive */
  }
  for (const args of [
    ['update', '-q'],
    ['install', '-y', '-q', '--no-install-recommends', ...missing],
  ]) {
    const r = spawnSync('apt-get', args, { stdio: ['ignore', 'ignore', 'inherit'], env });
    if (r.status !== 0) {
      log(`apt-get ${args.join(' ')} failed; run it by hand: ${cmd}`);
      process.exit(1);
    }
  }
  const still = missingOsPackages();
  if (still.length) {
    log(`still missing after install: ${still.join(', ')}`);
    process.exit(1);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  ensureNpm();
  if (!process.argv.includes('--npm-only')) ensureOs();
}
