/**
 * Credentials at rest: AES-256-GCM under a key from a key file.
 *
 * Key file: one key per line, `kid:base64(32 bytes)`; `#` comments and blank lines are
 * ignored. The first key seals; the others only open, which is what makes rotation work:
 * rotateKeyFile() prepends a new key, resealAll() moves every secret to it, and the old
 * line can then be deleted by hand.
 *
 * The AAD is the account address, so a sealed blob copied into another account's record
 * does not open (GCM authenticates it, NIST SP 800-38D). IVs are 12 random bytes; at well
 * under 2^32 seals per key the collision risk of random IVs stays negligible (SP 800-38D 8.3).
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeFileAtomic } from './atomic-file.js';
import { KeyFileError, SecretOpenError } from './errors.js';
import type { SealedSecret, StateStore } from './types.js';

const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KID_RE = /^[A-Za-z0-9_-]{1,64}$/;
/** Domain separation: a blob sealed by AutoPort for one purpose never opens for another. */
const AAD_PREFIX = 'autoport-credentials-v1\0';

export interface Keyring {
  readonly path: string;
  /** id of the key that seals */
  readonly current: string;
  readonly keys: ReadonlyMap<string, Buffer>;
}

function newKid(): string {
  const day = new Date().toISOString().slice(0, 10).replace(/-/g, '');
  return `k${day}-${randomBytes(3).toString('hex')}`;
}

function keyLine(): string {
  return `${newKid()}:${randomBytes(KEY_BYTES).toString('base64')}\n`;
}

const HEADER =
  '# AutoPort credentials key file. Keep it secret (mode 0600) and back it up: without it\n' +
  '# the captured credentials in the state file cannot be decrypted. First key seals.\n';

/** Write a fresh key file (mode 0600). Refuses to replace an existing one unless `force`. */
export async function generateKeyFile(
  path: string,
  options: { force?: boolean } = {},
): Promise<string> {
  const line = keyLine();
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  try {
    await writeFileAtomic(path, HEADER + line, { mode: 0o600, exclusive: !options.force });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new KeyFileError(
        'EKEYEXISTS',
        path,
        `key file ${path} already exists; replacing it makes every sealed credential unreadable. ` +
          `To add a key keep the file and rotate instead; to replace it anyway use --force`,
      );
    }
    throw err;
  }
  return line.slice(0, line.indexOf(':'));
}

export function loadKeyring(path: string): Keyring {
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    throw new KeyFileError(
      'EKEYMISSING',
      path,
      `key file ${path} not found; create one with: autoport init`,
      {
        cause: err,
      },
    );
  }
  if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
    const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
    throw new KeyFileError(
      'EKEYPERM',
      path,
      `key file ${path} is accessible by group or others (mode ${mode}); run: chmod 600 ${path}`,
    );
  }
  const keys = new Map<string, Buffer>();
  let current: string | undefined;
  readFileSync(path, 'utf8')
    .split(/\r?\n/)
    .forEach((raw, i) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) return;
      const bad = (why: string): KeyFileError =>
        new KeyFileError(
          'EKEYFORMAT',
          path,
          `key file ${path} line ${i + 1}: ${why} (expected kid:base64key)`,
        );
      const colon = line.indexOf(':');
      const kid = line.slice(0, colon);
      if (colon < 0 || !KID_RE.test(kid)) throw bad('bad key id');
      const b64 = line.slice(colon + 1);
      const key = Buffer.from(b64, 'base64');
      if (key.length !== KEY_BYTES || key.toString('base64') !== b64)
        throw bad('key is not 32 bytes of base64');
      if (keys.has(kid)) throw bad(`duplicate key id ${kid}`);
      keys.set(kid, key);
      current ??= kid;
    });
  if (current === undefined)
    throw new KeyFileError('EKEYFORMAT', path, `key file ${path} holds no key`);
  return { path, current, keys };
}

/** Prepend a new key (it seals from now on); returns its id. Old keys still open. */
export async function rotateKeyFile(path: string): Promise<string> {
  loadKeyring(path); // same checks as a load: refuse to extend a broken or exposed file
  const text = readFileSync(path, 'utf8');
  const body = text.startsWith(HEADER) ? text.slice(HEADER.length) : text;
  const line = keyLine();
  await writeFileAtomic(path, HEADER + line + body, { mode: 0o600 });
  return line.slice(0, line.indexOf(':'));
}

function aadBytes(aad: string): Buffer {
  return Buffer.from(AAD_PREFIX + aad, 'utf8');
}

export function seal(keyring: Keyring, plaintext: string | Uint8Array, aad: string): SealedSecret {
  const key = keyring.keys.get(keyring.current) as Buffer;
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(aadBytes(aad));
  const data = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return {
    kid: keyring.current,
    iv: iv.toString('base64'),
    tag: cipher.getAuthTag().toString('base64'),
    data: data.toString('base64'),
  };
}

export function open(keyring: Keyring, sealed: SealedSecret, aad: string): Buffer {
  const key = keyring.keys.get(sealed.kid);
  if (!key) {
    throw new SecretOpenError(
      'EKEYUNKNOWN',
      `secret was sealed with key ${sealed.kid}, which is not in ${keyring.path}; ` +
        `put that key's line back into the key file (from a backup)`,
    );
  }
  const iv = Buffer.from(sealed.iv ?? '', 'base64');
  const tag = Buffer.from(sealed.tag ?? '', 'base64');
  if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES || typeof sealed.data !== 'string') {
    throw new SecretOpenError('ESEALFORMAT', 'sealed secret is malformed (iv, tag or data)');
  }
  const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  decipher.setAAD(aadBytes(aad));
  decipher.setAuthTag(tag);
  try {
    return Buffer.concat([decipher.update(Buffer.from(sealed.data, 'base64')), decipher.final()]);
  } catch {
    throw new SecretOpenError(
      'ESEALAUTH',
      'sealed secret does not authenticate: altered, sealed with a different key of the same id, ' +
        'or belonging to another account',
    );
  }
}

export function openText(keyring: Keyring, sealed: SealedSecret, aad: string): string {
  return open(keyring, sealed, aad).toString('utf8');
}

export interface ResealResult {
  resealed: number;
  /** already under the current key */
  unchanged: number;
  failed: { address: string; code: string; message: string }[];
}

/**
 * Re-seal every account's credentials under the keyring's current key and flush. Records
 * that do not open are left as they are and reported, so one bad record never blocks a
 * rotation.
 */
export async function resealAll(store: StateStore, keyring: Keyring): Promise<ResealResult> {
  const result: ResealResult = { resealed: 0, unchanged: 0, failed: [] };
  for (const rec of await store.list()) {
    const sealed = rec.credentials;
    if (!sealed) continue;
    if (sealed.kid === keyring.current) {
      result.unchanged++;
      continue;
    }
    try {
      const plain = open(keyring, sealed, rec.address);
      const credentials = seal(keyring, plain, rec.address);
      plain.fill(0);
      await store.update(rec.address, (r) => {
        // unless a login captured a new password meanwhile
        if (r.credentials?.data === sealed.data) r.credentials = credentials;
      });
      result.resealed++;
    } catch (err) {
      const e = err as { code?: string; message: string };
      result.failed.push({ address: rec.address, code: e.code ?? 'EUNKNOWN', message: e.message });
    }
  }
  await store.flush();
  return result;
}
