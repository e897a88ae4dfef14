/**
 * The JSON store's limits, in one place. The figures behind them come from
 * `npm run bench:state` (bench/state.ts) on records shaped like a migrated account.
 */

/**
 * Accounts the JSON store agrees to load. It holds every record in memory: about 1.4 KB of
 * heap per account of the benchmark's shape (100,000: 150 MB heap, 260 MB RSS; 1,000,000:
 * 1.3 GB heap, 1.6 GB RSS and a 28 s start on a busy 2-core VM). That is within Node's
 * default 4 GB heap with room for a compaction and a bulk import, but each start and each
 * compaction grows with the count. Past this, PostgreSQL is the store to use; the JSON
 * store refuses to start rather than run into the wall mid-run.
 */
export const MAX_JSON_ACCOUNTS = 1_000_000;

/** A running store warns once when it grows past this share of its limit. */
export const WARN_AT_SHARE = 0.9;

/** The warning a store near its limit gives, or undefined while it is not near. */
export function nearLimitWarning(location: string, count: number, max: number): string | undefined {
  if (count < max * WARN_AT_SHARE) return undefined;
  return (
    `${location} holds ${count} accounts; the JSON store refuses to start ` +
    `with more than ${max}. Move the state to PostgreSQL before it gets there`
  );
}

/**
 * Compaction starts when the journal has grown to this many bytes and to at least
 * COMPACT_JOURNAL_SHARE of the snapshot. The share bounds what a start replays (the journal
 * costs about what the same bytes of snapshot cost to load) and amortises a compaction's
 * O(accounts) cost over as many bytes of changes; the floor keeps a small store from
 * rewriting itself for every few changes.
 */
export const COMPACT_MIN_JOURNAL_BYTES = 1 << 20;
export const COMPACT_JOURNAL_SHARE = 0.25;

/** After a failed compaction (disk full), the next try waits this long. */
export const COMPACT_RETRY_MS = 30_000;

/** Between retries of a failed journal write. */
export const RETRY_AFTER_ERROR_MS = 1000;

/**
 * A snapshot that is not in the one-account-per-line layout (written by hand, or by another
 * tool) is read as one document, only up to this size.
 */
export const WHOLE_DOCUMENT_MAX_BYTES = 64 << 20;

/** Bytes per write while streaming the snapshot or a large batch of journal lines. */
export const CHUNK_BYTES = 1 << 20;

/**
 * A compaction fdatasyncs its snapshot every this many bytes, so a journal fsync that
 * comes meanwhile waits for at most this much of it (atomic-file.ts says why).
 */
export const SNAPSHOT_SYNC_BYTES = 1 << 20;
