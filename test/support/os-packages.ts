/**
 * Makes sure the real mail servers the harness drives are installed. Uses the table in
 * scripts/ensure-deps.js (the one `npm test` runs first). As root on Debian/Ubuntu it installs
 * what is missing with apt-get; anywhere else it throws with the exact command to run.
 * It never skips: a real-server test without its server must fail, loudly.
 */
import { installOsPackages } from '../../scripts/ensure-deps.js';

let ensured = false;

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** Install (as root on Debian/Ubuntu) or demand the OS packages; cheap after the first call. */
export function ensureOsPackages(): void {
  if (ensured) return;
  installOsPackages();
  if (!isRoot()) {
    // Dovecot and Postfix switch users and bind as configured: the harness runs them as root.
    throw new Error(
      'the real-server test harness must run as root (it starts Dovecot and Postfix)',
    );
  }
  ensured = true;
}
