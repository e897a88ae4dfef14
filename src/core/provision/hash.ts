/**
 * Password hashes in the formats Dovecot's passwd-file reads ("{SCHEME}hash").
 *
 * SHA512-CRYPT and SHA256-CRYPT are computed here (Ulrich Drepper, "Unix crypt using
 * SHA-256 and SHA-512", 2007; the $6$/$5$ formats of glibc and Dovecot), so no
 * external tool is needed for the default scheme. BLF-CRYPT, ARGON2ID and ARGON2I are
 * delegated to `doveadm pw -s SCHEME` with the password on stdin (never in argv, where
 * `ps` would show it). Plaintext schemes are refused.
 */
import { createHash, randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';

export class ProvisionError extends Error {
  constructor(
    message: string,
    /** true when the operator must change the configuration */
    public readonly config = false,
  ) {
    super(message);
    this.name = 'ProvisionError';
  }
}

export const NATIVE_SCHEMES = ['SHA512-CRYPT', 'SHA256-CRYPT'] as const;
export const DOVEADM_SCHEMES = ['BLF-CRYPT', 'ARGON2ID', 'ARGON2I'] as const;
export const SUPPORTED_SCHEMES: readonly string[] = [...NATIVE_SCHEMES, ...DOVEADM_SCHEMES];

const CRYPT_ALPHABET = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const ROUNDS_DEFAULT = 5000;
const ROUNDS_MIN = 1000;
const ROUNDS_MAX = 999_999_999;
const SALT_MAX = 16;

// Byte order of the final encoding, straight from the spec's b64_from_24bit calls.
// prettier-ignore
const ORDER_512: Array<[number, number, number]> = [
  [0, 21, 42], [22, 43, 1], [44, 2, 23], [3, 24, 45], [25, 46, 4], [47, 5, 26], [6, 27, 48],
  [28, 49, 7], [50, 8, 29], [9, 30, 51], [31, 52, 10], [53, 11, 32], [12, 33, 54], [34, 55, 13],
  [56, 14, 35], [15, 36, 57], [37, 58, 16], [59, 17, 38], [18, 39, 60], [40, 61, 19], [62, 20, 41],
];
// prettier-ignore
const ORDER_256: Array<[number, number, number]> = [
  [0, 10, 20], [21, 1, 11], [12, 22, 2], [3, 13, 23], [24, 4, 14],
  [15, 25, 5], [6, 16, 26], [27, 7, 17], [18, 28, 8], [9, 19, 29],
];

function b64from24(b2: number, b1: number, b0: number, n: number): string {
  let w = (b2 << 16) | (b1 << 8) | b0;
  let out = '';
  for (let i = 0; i < n; i++) {
    out += CRYPT_ALPHABET[w & 0x3f];
    w >>= 6;
  }
  return out;
}

/** `len` bytes made of `block` repeated (the spec's P and S sequences). */
function repeatTo(block: Buffer, len: number): Buffer {
  const out = Buffer.alloc(len);
  for (let off = 0; off < len; off += block.length)
    block.copy(out, off, 0, Math.min(block.length, len - off));
  return out;
}

export interface ShaCryptOptions {
  bits: 256 | 512;
  /** salt characters (at most 16 are used); random when omitted */
  salt?: string;
  /** rounds; written into the hash when it differs from 5000; clamped to 1000..999999999 */
  rounds?: number;
}

/** SHA-crypt per Drepper's specification; returns "$6$[rounds=N$]salt$hash" (or "$5$..."). */
export function shaCrypt(password: string | Buffer, opts: ShaCryptOptions): string {
  const algo = opts.bits === 512 ? 'sha512' : 'sha256';
  const size = opts.bits / 8;
  const H = (...parts: Buffer[]): Buffer => {
    const h = createHash(algo);
    for (const p of parts) h.update(p);
    return h.digest();
  };
  const P = Buffer.isBuffer(password) ? password : Buffer.from(password, 'utf8');
  const saltStr = (opts.salt ?? randomSalt()).slice(0, SALT_MAX);
  const S = Buffer.from(saltStr, 'utf8');
  const customRounds = opts.rounds !== undefined;
  const rounds = Math.min(
    ROUNDS_MAX,
    Math.max(ROUNDS_MIN, Math.floor(opts.rounds ?? ROUNDS_DEFAULT)),
  );

  const B = H(P, S, P);
  const aParts: Buffer[] = [P, S, repeatTo(B, P.length)];
  for (let n = P.length; n > 0; n >>= 1) aParts.push(n & 1 ? B : P);
  let C = H(...aParts);

  const DP = H(...new Array<Buffer>(P.length).fill(P));
  const Pseq = repeatTo(DP, P.length);
  const DS = H(...new Array<Buffer>(16 + (C[0] as number)).fill(S));
  const Sseq = repeatTo(DS, S.length);

  for (let i = 0; i < rounds; i++) {
    const h = createHash(algo);
    h.update(i & 1 ? Pseq : C);
    if (i % 3) h.update(Sseq);
    if (i % 7) h.update(Pseq);
    h.update(i & 1 ? C : Pseq);
    C = h.digest();
  }

  const byte = (i: number): number => C[i] as number;
  let out = '';
  for (const [a, b, c] of opts.bits === 512 ? ORDER_512 : ORDER_256)
    out += b64from24(byte(a), byte(b), byte(c), 4);
  out += opts.bits === 512 ? b64from24(0, 0, byte(63), 2) : b64from24(0, byte(31), byte(30), 3);
  if (out.length !== (size === 64 ? 86 : 43)) throw new Error('sha-crypt encoding length mismatch');
  const prefix = opts.bits === 512 ? '$6$' : '$5$';
  return `${prefix}${customRounds ? `rounds=${rounds}$` : ''}${saltStr}$${out}`;
}

/** 16 salt characters from the crypt alphabet (96 bits of randomness). */
export function randomSalt(length = SALT_MAX): string {
  const bytes = randomBytes(length);
  let s = '';
  for (const b of bytes) s += CRYPT_ALPHABET[b & 0x3f];
  return s;
}

/** Verify a "$6$..."/"$5$..." hash (used by tests and to check an existing line). */
export function verifyShaCrypt(password: string, hash: string): boolean {
  const m = /^\$([56])\$(?:rounds=(\d+)\$)?([^$]{0,16})\$/.exec(hash);
  if (!m) return false;
  const rounds = m[2] === undefined ? undefined : Number(m[2]);
  const again = shaCrypt(password, { bits: m[1] === '6' ? 512 : 256, salt: m[3] ?? '', rounds });
  return again === hash;
}

export interface HashDeps {
  /** path of doveadm, for the schemes computed by Dovecot itself */
  doveadm?: string;
  doveadmTimeoutMs?: number;
}

function normalizeScheme(scheme: string): string {
  return scheme.trim().toUpperCase();
}

/** Throws a configuration error for a scheme AutoPort cannot produce. */
export function assertSupportedScheme(scheme: string): void {
  const s = normalizeScheme(scheme);
  if (['PLAIN', 'CLEAR', 'CLEARTEXT', 'PLAIN-TRUNC'].includes(s)) {
    throw new ProvisionError(
      `password scheme ${s} would store the password in clear; use SHA512-CRYPT (default), BLF-CRYPT or ARGON2ID`,
      true,
    );
  }
  if (!SUPPORTED_SCHEMES.includes(s)) {
    throw new ProvisionError(
      `password scheme "${scheme}" is not supported for provisioning; use one of ${SUPPORTED_SCHEMES.join(', ')} (BLF-CRYPT and ARGON2* need doveadm on this host)`,
      true,
    );
  }
}

/** "{SCHEME}hash" for a Dovecot passwd-file (doc: Dovecot "Password schemes"). */
export async function hashPassword(
  password: string,
  scheme = 'SHA512-CRYPT',
  deps: HashDeps = {},
): Promise<string> {
  const s = normalizeScheme(scheme);
  assertSupportedScheme(s);
  if (s === 'SHA512-CRYPT') return `{${s}}${shaCrypt(password, { bits: 512 })}`;
  if (s === 'SHA256-CRYPT') return `{${s}}${shaCrypt(password, { bits: 256 })}`;
  return doveadmHash(password, s, deps);
}

function doveadmHash(password: string, scheme: string, deps: HashDeps): Promise<string> {
  if (/[\r\n\0]/.test(password)) {
    return Promise.reject(
      new ProvisionError(
        `a password with line breaks or NUL cannot be hashed as ${scheme} through doveadm; use SHA512-CRYPT`,
      ),
    );
  }
  const bin = deps.doveadm ?? 'doveadm';
  return new Promise((resolve, reject) => {
    // -O: do not read dovecot.conf, hashing needs none of it.
    const child = spawn(bin, ['-O', 'pw', '-s', scheme], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), deps.doveadmTimeoutMs ?? 30_000);
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        new ProvisionError(
          e.code === 'ENOENT'
            ? `password scheme ${scheme} needs doveadm, which was not found (${bin}); install Dovecot's doveadm or use SHA512-CRYPT`
            : `doveadm could not be started: ${e.message}`,
          e.code === 'ENOENT',
        ),
      );
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = out.trim();
      if (code === 0 && line.startsWith(`{${scheme}}`)) return resolve(line);
      reject(
        new ProvisionError(
          `doveadm pw -s ${scheme} failed (${signal ?? `exit ${code}`}): ${err.trim() || line || 'no output'}`,
        ),
      );
    });
    // doveadm asks twice ("Enter new password", "Retype new password").
    child.stdin.on('error', () => undefined);
    child.stdin.end(`${password}\n${password}\n`);
  });
}
