/**
 * Provisioner for a Dovecot passwd-file (doc: Dovecot "Passwd-file"):
 *
 *   user:password:uid:gid:(gecos):home:(shell):extra_fields
 *
 * A new user gets `user:{SCHEME}hash:uid:gid::home::` (the fields empty unless
 * configured); an existing line gets the new hash and keeps every other field,
 * comments and other lines untouched.
 */
import { readFile } from 'node:fs/promises';
import { hashPassword, ProvisionError, type HashDeps } from './hash.js';
import { replaceFile, withFileLock, type LockOptions } from './file-lock.js';
import type { Provisioner } from './types.js';

export interface PasswdFileOptions extends LockOptions, HashDeps {
  path: string;
  /** default SHA512-CRYPT */
  scheme?: string;
  /** fields for new lines; "%u" (address), "%n" (local part), "%d" (domain) are expanded in home */
  uid?: string;
  gid?: string;
  home?: string;
  /** mode of a passwd-file created from scratch (default 0o640) */
  mode?: number;
}

/**
 * Dovecot splits lines on ":" and treats "#" lines as comments; a user name with
 * either, or with white space or control characters, would corrupt the file or
 * create a different user.
 */
export function assertPasswdUser(address: string): void {
  // eslint-disable-next-line no-control-regex -- control characters are what we refuse
  if (!address || /[:\s\u0000-\u001f\u007f]/.test(address) || address.startsWith('#')) {
    throw new ProvisionError(
      `cannot write user ${JSON.stringify(address)} to a passwd-file: empty, or contains ":", "#" at the start, white space or control characters`,
    );
  }
}

function expandHome(home: string, address: string): string {
  const at = address.lastIndexOf('@');
  const local = at < 0 ? address : address.slice(0, at);
  const domain = at < 0 ? '' : address.slice(at + 1);
  return home.replace(/%([und%])/g, (_m, c: string) =>
    c === 'u' ? address : c === 'n' ? local : c === 'd' ? domain : '%',
  );
}

export interface NewLineFields {
  uid?: string;
  gid?: string;
  home?: string;
}

/** Pure: the passwd-file content with `user`'s line added or its password replaced. */
export function upsertPasswdLine(
  content: string,
  user: string,
  hash: string,
  fields: NewLineFields = {},
): string {
  assertPasswdUser(user);
  if (/[:\r\n]/.test(hash)) throw new ProvisionError('password hash contains ":" or a line break');
  const lines = content === '' ? [] : content.replace(/\r?\n$/, '').split(/\r?\n/);
  let found = false;
  const out = lines.map((line) => {
    if (found || line.startsWith('#')) return line;
    const colon = line.indexOf(':');
    const name = colon < 0 ? line : line.slice(0, colon);
    if (name !== user) return line;
    found = true;
    const parts = line.split(':');
    parts[1] = hash;
    return parts.join(':');
  });
  if (!found) {
    // All seven fields even when empty: with a passwd-file userdb Dovecot refuses a
    // two-field line ("User ... is missing userdb info"); empty ones take the
    // userdb's default_fields, and a static userdb ignores them.
    const { uid, gid, home } = fields;
    out.push(`${user}:${hash}:${uid ?? ''}:${gid ?? ''}::${home ? expandHome(home, user) : ''}::`);
  }
  return `${out.join('\n')}\n`;
}

export function makePasswdFileProvisioner(opts: PasswdFileOptions): Provisioner {
  if (!opts.path)
    throw new ProvisionError(
      'provision.path (the Dovecot passwd-file) is required for kind passwd-file',
      true,
    );
  for (const [k, v] of Object.entries({ uid: opts.uid, gid: opts.gid, home: opts.home })) {
    if (v !== undefined && /[:\r\n]/.test(v))
      throw new ProvisionError(`provision.${k} must not contain ":" or line breaks`, true);
  }
  return {
    kind: 'passwd-file',
    async provision(address: string, password: string): Promise<void> {
      assertPasswdUser(address);
      // Hash outside the lock: ARGON2/BLF take a while and need no file access.
      const hash = await hashPassword(password, opts.scheme ?? 'SHA512-CRYPT', opts);
      await withFileLock(
        opts.path,
        async () => {
          const content = await readFile(opts.path, 'utf8').catch((err: NodeJS.ErrnoException) => {
            if (err.code === 'ENOENT') return '';
            throw err;
          });
          await replaceFile(opts.path, upsertPasswdLine(content, address, hash, opts), {
            mode: opts.mode,
          });
        },
        opts,
      );
    },
  };
}
