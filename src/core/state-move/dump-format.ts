/**
 * The dump of `autoport state export`: JSON lines, written and read one line at a time so
 * neither side ever holds the whole state as one string.
 *
 *   {"format":"autoport-state","version":1,"source":...,"backend":...,"exportedAt":...}
 *   {"record":{...}}                 one per account, exactly as the store holds it
 *   {"sideData":{"address":...,"key":...,"data":...}}   side data (store.side) of an account
 *   {"side":"<dir>/<file>","data":"<base64>"}   one per side file, relative to the side folder
 *   {"end":{"records":N,"sideFiles":M,"recordsDigest":...,"digest":...}}
 *
 * The end line comes last and carries the counts and digests, computed while writing (a
 * store read page by page has no count worth trusting up front). A dump without it was cut
 * short; `digest` (SHA-256 of every line before it, each with its LF) catches a damaged one.
 * `recordsDigest` does not depend on the order of the records nor on the order of their
 * keys, so a store that hands them out otherwise still gives the same digest: it is what
 * an import checks the target against once it has written.
 */
import { createHash } from 'node:crypto';
import { isAccountState, tryNormalize } from '../state/records.js';
import type { AccountRecord } from '../state/types.js';

export const DUMP_FORMAT = 'autoport-state';
export const DUMP_VERSION = 1;

export interface DumpHeader {
  format: typeof DUMP_FORMAT;
  version: number;
  /** the store exported, without a password */
  source: string;
  backend: 'json' | 'postgresql';
  /** the name of the store's side folder: how the records' uidMap paths begin */
  sideFolder: string;
  exportedAt: string;
}

export interface DumpEnd {
  records: number;
  sideFiles: number;
  /** SetDigest of the records (canonicalJson) */
  recordsDigest: string;
  /** SetDigest of the side files (path and bytes) */
  sideDigest: string;
  sideData: number;
  /** SetDigest of the side data (canonicalJson of the entry) */
  sideDataDigest: string;
  /** SHA-256 of every line before the end line, each with its LF */
  digest: string;
}

/** An account's side data under one key (state/side-data.ts): a file, or a row in PostgreSQL. */
export interface SideDataEntry {
  address: string;
  key: string;
  data: unknown;
}

export interface SideFile {
  /** relative to the store's side folder, with `/` */
  path: string;
  data: Buffer;
}

/** JSON with the keys of every object sorted: one text per value, whatever the key order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) sorted[k] = (v as Record<string, unknown>)[k];
    return sorted;
  });
}

/**
 * A digest of a set: the sum modulo 2^256 of each member's SHA-256. The order members come
 * in does not matter, and unlike a XOR two equal members do not cancel out.
 */
export class SetDigest {
  private sum = 0n;
  private static readonly MOD = 1n << 256n;

  add(text: string | Buffer): void {
    const h = BigInt(`0x${createHash('sha256').update(text).digest('hex')}`);
    this.sum = (this.sum + h) % SetDigest.MOD;
  }

  hex(): string {
    return this.sum.toString(16).padStart(64, '0');
  }
}

export function recordDigestText(rec: AccountRecord): string {
  return canonicalJson(rec);
}

export function sideDigestText(file: SideFile): Buffer {
  return Buffer.concat([Buffer.from(`${file.path}\n`), file.data]);
}

/** Why side data read from a dump cannot go into a store, or undefined. */
export function sideDataProblem(v: unknown): string | undefined {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return 'not an object';
  const e = v as Partial<SideDataEntry>;
  if (typeof e.address !== 'string' || tryNormalize(e.address) !== e.address)
    return `address ${JSON.stringify(e.address)} is not a normalised address`;
  if (typeof e.key !== 'string' || e.key === '') return 'no key';
  if (e.data === undefined) return 'no data';
  return undefined;
}

/** Why a record read from a dump cannot go into a store, or undefined. */
export function recordProblem(rec: unknown): string | undefined {
  if (rec === null || typeof rec !== 'object' || Array.isArray(rec)) return 'not an object';
  const r = rec as Partial<AccountRecord>;
  if (typeof r.address !== 'string' || tryNormalize(r.address) !== r.address)
    return `address ${JSON.stringify(r.address)} is not a normalised address`;
  if (!isAccountState(r.state)) return `unknown state ${JSON.stringify(r.state)}`;
  if (typeof r.updatedAt !== 'string') return 'updatedAt is missing';
  if (!Array.isArray(r.errors)) return 'errors is not a list';
  if (r.folders === null || typeof r.folders !== 'object' || Array.isArray(r.folders))
    return 'folders is not an object';
  return undefined;
}

/**
 * Why a side file's path cannot be written under a side folder, or undefined: relative,
 * `/`-separated, no `.`/`..`/empty segment, no hidden name (temp files start with a dot).
 */
export function sidePathProblem(path: unknown): string | undefined {
  if (typeof path !== 'string' || path.length === 0) return 'no path';
  if (path.length > 4096) return 'path too long';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\\]/.test(path)) return 'path with a control character or a backslash';
  const parts = path.split('/');
  if (parts.some((p) => p === '' || p.startsWith('.')))
    return `path ${JSON.stringify(path)} is not a plain relative path`;
  return undefined;
}
