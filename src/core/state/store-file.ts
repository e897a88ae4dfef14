/**
 * The lowdb adapter of the JSON store: how the document is laid out on disk, read back and
 * checked.
 *
 * Layout: `{"version":1,"accounts":{` then one account per line, so an operator can grep
 * the file and a diff shows which accounts changed. Writing relies on records being frozen
 * (see records.ts): the snapshot is taken synchronously as a list of references, each
 * record's JSON line is cached for the record's lifetime, and the file is streamed out in
 * chunks so a 100,000-account document neither blocks the event loop nor is re-serialised
 * in full for every save.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Adapter } from 'lowdb';
import { writeFileAtomic } from './atomic-file.js';
import { StateError, StoreCorruptError } from './errors.js';
import { checkLoadedRecord, deepFreeze, normalizeAddress } from './records.js';
import type { AccountRecord } from './types.js';

export const STORE_VERSION = 1;

/** The document in memory. A Map, not an object: addresses come from untrusted logins. */
export interface StoreData {
  version: typeof STORE_VERSION;
  accounts: Map<string, AccountRecord>;
}

export function emptyStoreData(): StoreData {
  return { version: STORE_VERSION, accounts: new Map() };
}

export interface StoreFileOptions {
  /** bytes per write while streaming the document out (default 1 MiB) */
  chunkBytes?: number;
}

export class StoreFileAdapter implements Adapter<StoreData> {
  readonly backupPath: string;
  private readonly lines = new WeakMap<AccountRecord, string>();
  private readonly chunkBytes: number;

  constructor(
    readonly path: string,
    options: StoreFileOptions = {},
  ) {
    this.backupPath = `${path}.bak`;
    this.chunkBytes = options.chunkBytes ?? 1 << 20;
  }

  async read(): Promise<StoreData | null> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      if (existsSync(this.backupPath)) {
        // Saves never leave the file absent, so someone removed it: do not start empty
        // silently and overwrite the accounts' only remaining copy.
        throw new StateError(
          'ESTOREMISSING',
          `state file ${this.path} is missing but its backup ${this.backupPath} exists. ` +
            `Restore it with: cp ${this.backupPath} ${this.path}, ` +
            `or delete ${this.backupPath} to start with an empty store`,
        );
      }
      return null;
    }
    return this.parse(text);
  }

  parse(text: string): StoreData {
    const corrupt = (detail: string, cause?: unknown): StoreCorruptError =>
      new StoreCorruptError(this.path, this.backupPath, detail, {
        cause,
        backupExists: existsSync(this.backupPath),
      });
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      throw corrupt(
        text.length === 0 ? 'empty file' : `invalid JSON: ${(err as Error).message}`,
        err,
      );
    }
    if (doc === null || typeof doc !== 'object') throw corrupt('not a JSON object');
    const { version, accounts } = doc as { version?: unknown; accounts?: unknown };
    if (typeof version === 'number' && version > STORE_VERSION) {
      throw corrupt(`format version ${version} was written by a newer autoport; upgrade autoport`);
    }
    if (version !== STORE_VERSION) throw corrupt(`unknown format version ${String(version)}`);
    if (accounts === null || typeof accounts !== 'object' || Array.isArray(accounts)) {
      throw corrupt('"accounts" is not an object');
    }
    const map = new Map<string, AccountRecord>();
    for (const [key, rec] of Object.entries(accounts)) {
      let problem = checkLoadedRecord(key, rec);
      if (!problem && normalizeKey(key) !== key) problem = 'key is not a normalised address';
      if (problem) throw corrupt(`account ${JSON.stringify(key)}: ${problem}`);
      map.set(key, deepFreeze(rec as AccountRecord));
    }
    return { version: STORE_VERSION, accounts: map };
  }

  /** Not async on purpose: the snapshot must be taken before the caller's next statement. */
  write(data: StoreData): Promise<void> {
    const records = Array.from(data.accounts.values());
    return writeFileAtomic(this.path, this.chunks(records), { backupPath: this.backupPath }).then(
      () => undefined,
    );
  }

  /** The whole document as one string (tests, tools). */
  serialize(data: StoreData): string {
    return Array.from(this.chunks(Array.from(data.accounts.values()))).join('');
  }

  private *chunks(records: AccountRecord[]): Generator<string> {
    let buf = `{"version":${STORE_VERSION},"accounts":{`;
    for (let i = 0; i < records.length; i++) {
      const rec = records[i] as AccountRecord;
      let line = this.lines.get(rec);
      if (line === undefined) {
        line = `${JSON.stringify(rec.address)}:${JSON.stringify(rec)}`;
        if (Object.isFrozen(rec)) this.lines.set(rec, line);
      }
      buf += i === 0 ? `\n${line}` : `,\n${line}`;
      if (buf.length >= this.chunkBytes) {
        yield buf;
        buf = '';
      }
    }
    yield `${buf}\n}}\n`;
  }
}

function normalizeKey(key: string): string | undefined {
  try {
    return normalizeAddress(key);
  } catch {
    return undefined;
  }
}
