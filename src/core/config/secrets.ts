/**
 * Secrets come from a file or an environment variable, never from the config text itself:
 * the config gets copied into tickets and chat, a 0600 file or a systemd credential does not.
 */
import { readFileSync, statSync } from 'node:fs';

export interface SecretRef {
  passwordFile?: string;
  passwordEnv?: string;
}

export type SecretResult =
  | { ok: true; value: string; warning?: string }
  | { ok: false; key: 'passwordFile' | 'passwordEnv' | undefined; problem: string };

/**
 * Read the secret named by `ref`. `passwordFile` must already be an absolute path.
 * One trailing newline is dropped (echo and editors add one); other whitespace is kept,
 * because it can be part of a password.
 */
export function readSecret(ref: SecretRef, env: NodeJS.ProcessEnv): SecretResult {
  if (ref.passwordFile !== undefined && ref.passwordEnv !== undefined) {
    return { ok: false, key: 'passwordEnv', problem: 'give passwordFile or passwordEnv, not both' };
  }
  if (ref.passwordFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(ref.passwordFile, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      const why =
        code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code;
      return { ok: false, key: 'passwordFile', problem: `cannot read the password file (${why})` };
    }
    const value = text.replace(/\r?\n$/, '');
    if (value === '')
      return { ok: false, key: 'passwordFile', problem: 'the password file is empty' };
    let warning: string | undefined;
    try {
      // Group/other bits on a password file: readable by more than the service account.
      if ((statSync(ref.passwordFile).mode & 0o077) !== 0) {
        warning = `${ref.passwordFile} is readable by group or others; chmod 600 it`;
      }
    } catch {
      /* read succeeded a moment ago; a stat race is not worth failing for */
    }
    return warning ? { ok: true, value, warning } : { ok: true, value };
  }
  if (ref.passwordEnv !== undefined) {
    const value = env[ref.passwordEnv];
    if (value === undefined) {
      return {
        ok: false,
        key: 'passwordEnv',
        problem: `environment variable ${ref.passwordEnv} is not set`,
      };
    }
    if (value === '') {
      return {
        ok: false,
        key: 'passwordEnv',
        problem: `environment variable ${ref.passwordEnv} is empty`,
      };
    }
    return { ok: true, value };
  }
  return {
    ok: false,
    key: undefined,
    problem: 'needs passwordFile (a file holding the password) or passwordEnv',
  };
}
