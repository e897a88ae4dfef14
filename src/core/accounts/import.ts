/**
 * `accounts import <file>`: the list of every account on the source, one address per
 * line, `#` starts a comment. Imported accounts that never log in show up in
 * `report leftovers`, which is how the administrator learns who would lose mail when the
 * source goes. Importing marks records; it never changes a state.
 */
import { OperatorError } from '../errors.js';
import { InvalidAddressError } from '../state/errors.js';
import { normalizeAddress } from '../state/records.js';
import type { AccountRecord, StateStore } from '../state/types.js';

export interface ImportProblem {
  line: number;
  text: string;
  problem: string;
}

export interface ParsedAccountList {
  addresses: string[];
  /** the same address twice (after lower-casing): kept once */
  duplicates: number;
  problems: ImportProblem[];
}

const MAX_SHOWN_PROBLEMS = 5;

export function parseAccountList(text: string): ParsedAccountList {
  const seen = new Set<string>();
  const out: ParsedAccountList = { addresses: [], duplicates: 0, problems: [] };
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  lines.forEach((raw, i) => {
    const hash = raw.indexOf('#');
    const entry = (hash >= 0 ? raw.slice(0, hash) : raw).trim();
    if (entry === '') return;
    const problem = (p: string): void =>
      void out.problems.push({ line: i + 1, text: entry.slice(0, 80), problem: p });
    if (/\s/.test(entry)) return problem('more than one word: one address per line');
    let address: string;
    try {
      address = normalizeAddress(entry);
    } catch (err) {
      if (err instanceof InvalidAddressError) return problem(err.message);
      throw err;
    }
    const at = address.lastIndexOf('@');
    if (at === 0 || at === address.length - 1)
      return problem('an address needs text on both sides of @');
    if (seen.has(address)) {
      out.duplicates++;
      return;
    }
    seen.add(address);
    out.addresses.push(address);
  });
  return out;
}

export interface ImportResult {
  /** new records (state unknown) */
  added: number;
  /** records that existed and are now marked imported */
  marked: number;
  /** records that were imported before */
  unchanged: number;
  duplicates: number;
  total: number;
}

/** All or nothing: a bad line stops the import before anything changes. */
export async function importAccounts(
  store: StateStore,
  text: string,
  file = 'the list',
): Promise<ImportResult> {
  const parsed = parseAccountList(text);
  assertNoProblems(parsed, file);
  return { ...(await importAddresses(store, parsed.addresses)), duplicates: parsed.duplicates };
}

/** The import's refusal of a list with bad lines, naming the first few. */
export function assertNoProblems(parsed: ParsedAccountList, file = 'the list'): void {
  if (parsed.problems.length > 0) {
    const shown = parsed.problems
      .slice(0, MAX_SHOWN_PROBLEMS)
      .map((p) => `line ${p.line} ${JSON.stringify(p.text)}: ${p.problem}`)
      .join('; ');
    const more = parsed.problems.length - MAX_SHOWN_PROBLEMS;
    throw new OperatorError(
      `${file} has ${parsed.problems.length} bad line(s), nothing was imported: ${shown}${more > 0 ? `; and ${more} more` : ''}`,
      'fix those lines (one address per line, # starts a comment) and import again',
      'EIMPORT',
    );
  }
}

/**
 * Changes in flight at once: on PostgreSQL each is a round trip (and a connection from the
 * pool, 10 by default), so a few dozen keep the pool busy without queueing thousands.
 */
export const IMPORT_CONCURRENCY = 32;

/** thrown inside update() to leave a record that is already imported unwritten */
const ALREADY_IMPORTED = new Error('already imported');

/**
 * A record update() has just created: nothing but the fields newRecord() gives. (A record
 * that exists with nothing in it either counts as added: it said nothing about the account.)
 */
function isPristine(rec: AccountRecord): boolean {
  const keys = Object.keys(rec).filter((k) => rec[k as keyof AccountRecord] !== undefined);
  return (
    keys.length === 5 &&
    rec.state === 'unknown' &&
    rec.errors.length === 0 &&
    Object.keys(rec.folders).length === 0
  );
}

/**
 * Mark already parsed, distinct addresses (parseAccountList) as imported: one update() per
 * address, deciding under the record's lock (no get() before it), IMPORT_CONCURRENCY at a
 * time. The first failure stops the rest from starting and is thrown once those in flight end.
 */
export async function importAddresses(
  store: StateStore,
  addresses: readonly string[],
  concurrency = IMPORT_CONCURRENCY,
): Promise<ImportResult> {
  const r: ImportResult = {
    added: 0,
    marked: 0,
    unchanged: 0,
    duplicates: 0,
    total: addresses.length,
  };
  const one = async (address: string): Promise<void> => {
    let added = false;
    try {
      await store.update(address, (rec) => {
        if (rec.imported) throw ALREADY_IMPORTED;
        added = isPristine(rec);
        rec.imported = true;
      });
    } catch (err) {
      if (err !== ALREADY_IMPORTED) throw err;
      r.unchanged++;
      return;
    }
    if (added) r.added++;
    else r.marked++;
  };
  let next = 0;
  let failure: { err: unknown } | undefined;
  const lane = async (): Promise<void> => {
    while (!failure && next < addresses.length) {
      const address = addresses[next++]!;
      await one(address).catch((err: unknown) => void (failure ??= { err }));
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, addresses.length) }, lane));
  if (failure) throw failure.err;
  return r;
}
