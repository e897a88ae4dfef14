/**
 * Read what a JSON store has on disk, snapshot and journal, synchronously: for tests that
 * check what is durable while the store that wrote it is still open (or was killed).
 * Tests only: it reads the files whole, which the store itself never does.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { AccountRecord } from '../../src/core/state/types.js';

export interface StateOnDisk {
  version: number;
  journal?: number;
  accounts: Record<string, AccountRecord>;
  /** journal generations replayed */
  journals: number[];
}

export function readStateSync(path: string): StateOnDisk {
  const doc = JSON.parse(readFileSync(path, 'utf8')) as {
    version: number;
    journal?: number;
    accounts: Record<string, AccountRecord>;
  };
  const accounts = new Map(Object.entries(doc.accounts));
  const prefix = `${basename(path)}.journal.`;
  const gens = readdirSync(dirname(path))
    .filter((n) => n.startsWith(prefix))
    .map((n) => Number(n.slice(prefix.length)))
    .filter((g) => g >= (doc.journal ?? 0))
    .sort((a, b) => a - b);
  for (const g of gens) {
    const file = join(dirname(path), `${prefix}${g}`);
    if (!existsSync(file)) continue;
    let batch: { remove?: string; address?: string }[] = [];
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      let v: { remove?: string; address?: string; commit?: number };
      try {
        v = JSON.parse(line) as typeof v;
      } catch {
        continue; // the torn last line, or the empty string after the last LF
      }
      if (typeof v.commit !== 'number') {
        batch.push(v);
        continue;
      }
      for (const c of batch) {
        if (typeof c.remove === 'string') accounts.delete(c.remove);
        else if (typeof c.address === 'string') accounts.set(c.address, c as AccountRecord);
      }
      batch = []; // lines after the last commit do not count
    }
  }
  return { ...doc, accounts: Object.fromEntries(accounts), journals: gens };
}
