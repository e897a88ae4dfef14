/**
 * Wait until a freshly provisioned account can log in.
 *
 * Dovecot re-reads a passwd-file at most once per second (it checks the file's mtime
 * and size only when its clock second changes), so a login right after provision()
 * may still be refused. We try at once, then after ~1.1 s (the next second has
 * surely begun), then with doubling delays up to `maxDelayMs`, until `timeoutMs`.
 */
import { ProvisionError } from './hash.js';

export interface WaitForLoginOptions {
  /** give up after this long (default 15 s) */
  timeoutMs?: number;
  /** delay before the first retry (default 1100 ms) */
  firstDelayMs?: number;
  maxDelayMs?: number;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

export interface WaitForLoginResult {
  attempts: number;
  waitedMs: number;
}

const defaultSleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * `tryLogin` resolves true when the login worked and false when it was refused;
 * an exception (server unreachable, TLS failure) is not "not yet" and is passed on.
 */
export async function waitForLogin(
  tryLogin: () => Promise<boolean>,
  opts: WaitForLoginOptions = {},
): Promise<WaitForLoginResult> {
  const now = opts.now ?? Date.now;
  const sleep = opts.sleep ?? defaultSleep;
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const maxDelay = opts.maxDelayMs ?? 4000;
  const start = now();
  let delay = opts.firstDelayMs ?? 1100;
  for (let attempts = 1; ; attempts++) {
    if (await tryLogin()) return { attempts, waitedMs: now() - start };
    const left = start + timeoutMs - now();
    if (left <= 0) {
      throw new ProvisionError(
        `the destination still refuses the new password after ${attempts} attempts in ${Math.round((now() - start) / 1000)} s; check that it reads the provisioned passwd-file (passdb) and that the login name format matches`,
      );
    }
    await sleep(Math.min(delay, left));
    delay = Math.min(delay * 2, maxDelay);
  }
}
