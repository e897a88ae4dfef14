/**
 * Makes sure the real mail servers the harness drives are installed. Uses the table in
 * scripts/ensure-deps.js (the one `npm test` runs first). As root on Debian/Ubuntu it installs
 * what is missing with apt-get; anywhere else it throws with the exact command to run.
 * It never skips: a real-server test without its server must fail, loudly.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { missingOsPackages } from '../../scripts/ensure-deps.js';

let ensured = false;

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

function aptInstall(packages: string[]): void {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  try {
    // Postfix asks a debconf question on install; the harness writes its own config.
    execFileSync('debconf-set-selections', [], {
      input: 'postfix postfix/main_mailer_type select No configuration\n',
      env,
    });
  } catch {
    /* no debconf: noninteractive falls back to the defaults */
  }
  for (const args of [
    ['update', '-q'],
    ['install', '-y', '-q', '--no-install-recommends', ...packages],
  ]) {
    const r = spawnSync('apt-get', args, {
      stdio: ['ignore', 'ignore', 'pipe'],
      env,
      encoding: 'utf8',
    });
    if (r.status !== 0) {
      throw new Error(
        `apt-get ${args.join(' ')} failed (${r.stderr?.trim() || `exit ${r.status}`}); ` +
          `run it by hand: apt-get install -y ${packages.join(' ')}`,
      );
    }
  }
}

/** Install (as root on Debian/Ubuntu) or demand the OS packages; cheap after the first call. */
export function ensureOsPackages(): void {
  if (ensured) return;
  const missing = missingOsPackages();
  if (missing.length > 0) {
    const cmd = `apt-get install -y ${missing.join(' ')}`;
    if (!isRoot() || !existsSync('/usr/bin/apt-get')) {
      throw new Error(
        `the test servers need OS packages that are missing: ${missing.join(', ')}. ` +
          `Install them as root on Debian/Ubuntu: ${cmd}`,
      );
    }
    aptInstall(missing);
    const still = missingOsPackages();
    if (still.length > 0)
      throw new Error(`still missing after apt-get: ${still.join(', ')}; try: ${cmd}`);
  }
  if (!isRoot()) {
    // Dovecot and Postfix switch users and bind as configured: the harness runs them as root.
    throw new Error(
      'the real-server test harness must run as root (it starts Dovecot and Postfix)',
    );
  }
  ensured = true;
}
