#!/usr/bin/env node
// Sets up what `npm test` and `npm run demo` need on a fresh machine: npm packages, then the
// OS packages of the real mail servers the tests drive. Installs them when running as root on
// Debian/Ubuntu; otherwise stops with the exact command to run. Plain JS, no dependencies:
// it runs before node_modules exists.
import { spawnSync } from 'node:child_process';
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
  '/usr/bin/setpriv': 'util-linux',
  '/usr/bin/fail2ban-regex': 'fail2ban',
  '/usr/bin/systemd-analyze': 'systemd',
  '/usr/sbin/haproxy': 'haproxy',
  // the metapackage (today postgresql-15); its own files are docs, whatever the version
  '/usr/share/doc/postgresql/copyright': 'postgresql',
};

/**
 * Perl module -> Debian package. swaks speaks TLS only with Net::SSLeay, which it merely
 * Recommends, and `--no-install-recommends` skips Recommends.
 */
export const PERL_MODULES = {
  'Net::SSLeay': 'libnet-ssleay-perl',
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

function hasPerlModule(mod) {
  if (!existsSync('/usr/bin/perl')) return false;
  return spawnSync('/usr/bin/perl', [`-M${mod}`, '-e', '1'], { stdio: 'ignore' }).status === 0;
}

/** Debian packages that are missing on this machine (deduplicated) */
export function missingOsPackages() {
  const bins = Object.entries(OS_PACKAGES)
    .filter(([bin]) => !existsSync(bin))
    .map(([, pkg]) => pkg);
  const mods = Object.entries(PERL_MODULES)
    .filter(([mod]) => !hasPerlModule(mod))
    .map(([, pkg]) => pkg);
  return [...new Set([...bins, ...mods])];
}

function isRoot() {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/**
 * Install what is missing (as root on Debian/Ubuntu), or throw an Error whose message says
 * exactly what to run. Returns the packages it installed.
 */
export function installOsPackages() {
  const missing = missingOsPackages();
  if (missing.length === 0) return [];
  const cmd = `apt-get install -y ${missing.join(' ')}`;
  if (!isRoot() || !existsSync('/usr/bin/apt-get')) {
    throw new Error(
      `missing OS packages: ${missing.join(', ')}; install them (as root on Debian/Ubuntu): ${cmd}`,
    );
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  // Postfix asks debconf questions on install; answer "No configuration": the tests write their own.
  spawnSync('debconf-set-selections', [], {
    input: 'postfix postfix/main_mailer_type select No configuration\n',
    env,
  });
  for (const args of [
    ['update', '-q'],
    ['install', '-y', '-q', '--no-install-recommends', ...missing],
  ]) {
    const r = spawnSync('apt-get', args, {
      stdio: ['ignore', 'ignore', 'pipe'],
      env,
      encoding: 'utf8',
    });
    if (r.status !== 0) {
      throw new Error(
        `apt-get ${args.join(' ')} failed (${r.stderr?.trim() || `exit ${r.status}`}); run it by hand: ${cmd}`,
      );
    }
  }
  const still = missingOsPackages();
  if (still.length)
    throw new Error(`still missing after apt-get: ${still.join(', ')}; try: ${cmd}`);
  return missing;
}

function ensureOs() {
  const missing = missingOsPackages();
  if (missing.length === 0) return;
  log(`installing OS packages: ${missing.join(' ')}`);
  try {
    installOsPackages();
  } catch (err) {
    log(err.message);
    process.exit(1);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  ensureNpm();
  if (!process.argv.includes('--npm-only')) ensureOs();
}
