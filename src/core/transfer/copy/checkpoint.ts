/**
 * The per-folder checkpoint: what of one source folder is on the destination, and where.
 *
 * Identity of a copied message is (folder, source UIDVALIDITY, source UID) plus the SHA-256
 * of the bytes received; never Message-ID. The map holds, per source UID, the destination
 * UID (from APPENDUID, RFC 4315), the hash, the size and the flags last written.
 *
 * How kill -9 at any moment stays free of duplicates and gaps (the hard case is a crash
 * after the destination accepted an APPEND but before the map recorded it):
 *
 *  1. Before the first APPEND of a run, the destination folder's UIDNEXT is written to the
 *     checkpoint as the "watermark" and fsynced. Every message this run appends gets a UID at
 *     or above it (RFC 3501 2.3.1.1: UIDs are strictly ascending).
 *  2. At the start of the next run (or after a reconnect), every destination message with a
 *     UID at or above the old watermark that the map does not know is fetched and hashed:
 *     these "unbound" messages go into a pool (and are fsynced) before the watermark moves.
 *  3. A source message about to be copied is first looked up in the pool by its SHA-256; a
 *     hit binds it to that destination UID ("matched") instead of appending it again. Two
 *     distinct source messages with identical bytes each consume one pool entry.
 *
 * The same pool serves two other cases: a source folder whose UIDVALIDITY changed (the old
 * map's entries become unbound destination messages, matched again by hash), and a
 * destination folder whose UIDVALIDITY changed (the map's destination UIDs are dropped and
 * rebuilt by hashing the whole destination folder).
 *
 * A mapped message missing on the destination under the same destination UIDVALIDITY was
 * expunged there. Whether it is copied again depends on who did it (see reconcileLost in
 * reconcile.ts); one the user deleted moves from the map to "gone", which keeps its source
 * UID out of later copies until a repair run drops it.
 *
 * On disk: a snapshot (a side file written atomically) plus an append-only journal of
 * operations, fsynced at commit points. Every operation is an assignment, so replaying the
 * journal over a snapshot that already contains it gives the same state; a line torn by a
 * crash is ignored.
 */
import { closeSync, fdatasyncSync, openSync, readFileSync, truncateSync, writeSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { readSideFile, writeSideFile } from '../../state/side-files.js';
import {
  CheckpointState,
  UNKNOWN_FLAGS,
  type CheckpointOp,
  type MapEntry,
  type PoolEntry,
  type Snapshot,
  type SnapshotV1,
} from './checkpoint-state.js';

export {
  CheckpointState,
  UNKNOWN_FLAGS,
  upgradeSnapshot,
  type CheckpointOp,
  type GoneEntry,
  type MapEntry,
  type PoolEntry,
  type Snapshot,
  type SnapshotV1,
} from './checkpoint-state.js';

/** Parse journal text; a torn or unparsable line (a crash mid-write) is skipped. */
export function parseJournal(text: string): CheckpointOp[] {
  const ops: CheckpointOp[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    try {
      const op = JSON.parse(line) as CheckpointOp;
      if (op && typeof op === 'object' && typeof op.t === 'string') ops.push(op);
    } catch {
      // torn line: the operation never committed
    }
  }
  return ops;
}

/** Compact once the journal holds this many operations more than the live entries. */
const COMPACT_SLACK = 2000;

export class Checkpoint {
  private fd: number | null = null;
  private buffered = '';
  private journalOps = 0;

  private constructor(
    readonly snapshotPath: string,
    readonly state: CheckpointState,
  ) {}

  get journalPath(): string {
    return `${this.snapshotPath}.journal`;
  }

  static async open(snapshotPath: string): Promise<Checkpoint> {
    await mkdir(dirname(snapshotPath), { recursive: true, mode: 0o700 });
    const snap = await readSideFile<Snapshot | SnapshotV1>(snapshotPath);
    const cp = new Checkpoint(snapshotPath, CheckpointState.fromSnapshot(snap));
    let text = '';
    try {
      text = readFileSync(cp.journalPath, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const ops = parseJournal(text);
    for (const op of ops) cp.state.apply(op);
    cp.journalOps = ops.length;
    if (text && !text.endsWith('\n')) {
      // drop the torn tail so the next line starts clean
      truncateSync(cp.journalPath, text.lastIndexOf('\n') + 1);
    }
    if (cp.journalOps > cp.state.map.size + COMPACT_SLACK) await cp.compact();
    cp.fd = openSync(cp.journalPath, 'a', 0o600);
    return cp;
  }

  // What the copier records, one method per operation, so the journal's codes stay in this
  // module. Each is applied at once and durable at the next commit(); the watermark at once.

  /** Step 1: the destination's UIDNEXT before this run's first APPEND, fsynced at once. */
  setWatermark(uidNext: number): void {
    this.record({ t: 'wm', uid: uidNext });
    this.commit();
  }

  setHeads(srcUv: number, dstUv: number): void {
    this.record({ t: 'head', srcUv, dstUv });
  }

  /** The source folder was recreated: the map's copies become pool entries ("rebase"). */
  sourceRecreated(srcUv: number): void {
    this.record({ t: 'rebase', srcUv });
  }

  /** The destination folder was recreated: every destination UID is unknown again. */
  destinationRecreated(dstUv: number): void {
    this.record({ t: 'dstreset', dstUv });
  }

  /** A source message is on the destination as `entry` (copied, or bound by hash). */
  bind(sourceUid: number, entry: MapEntry): void {
    this.record({ t: 'm', s: sourceUid, e: entry });
  }

  /**
   * Step 3: a source message matched this pool entry. The flags an interrupted run gave that
   * copy are not known, so the entry says so until flagsWritten() records the ones set.
   */
  bindToPool(sourceUid: number, hit: PoolEntry): void {
    this.bind(sourceUid, { d: hit.d, h: hit.h, z: hit.z, f: UNKNOWN_FLAGS });
  }

  /** The flags (a flagKey) now on the destination copy of a source message. */
  flagsWritten(sourceUid: number, flags: string): void {
    this.record({ t: 'f', s: sourceUid, f: flags });
  }

  /** Drop a source message from the map (expunged on the source, or to be copied again). */
  forget(sourceUid: number): void {
    this.record({ t: 'x', s: sourceUid });
  }

  /** The user deleted this copy on the destination: keep it out of later copies. */
  deletedByUser(sourceUid: number): void {
    this.record({ t: 'gone', s: sourceUid });
  }

  /** Step 2: a destination message no source UID is bound to, known by its content. */
  addToPool(entry: PoolEntry): void {
    this.record({ t: 'p', e: entry });
  }

  removeFromPool(destUid: number): void {
    this.record({ t: 'pd', d: destUid });
  }

  /**
   * The highest source UID this run considered, and the source's modseq when everything up
   * to it is on the destination (undefined: none, so the next run lists the source in full).
   */
  setProgress(lastUid: number, modseq: string | undefined): void {
    this.record({ t: 'ms', modseq: modseq ?? '', lastUid });
  }

  /** Apply an operation and queue its journal line. */
  private record(op: CheckpointOp): void {
    this.state.apply(op);
    this.buffered += `${JSON.stringify(op)}\n`;
    this.journalOps++;
  }

  /** Write and fsync what was recorded. Called before APPENDs that rely on it, and per batch. */
  commit(): void {
    if (!this.buffered || this.fd === null) return;
    writeSync(this.fd, this.buffered);
    fdatasyncSync(this.fd);
    this.buffered = '';
  }

  /** Fold the journal into the snapshot (atomic write), then empty the journal. */
  async compact(): Promise<void> {
    this.commit();
    await writeSideFile(this.snapshotPath, this.state.toSnapshot());
    try {
      truncateSync(this.journalPath, 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    this.journalOps = 0;
  }

  async close(): Promise<void> {
    this.commit();
    if (this.journalOps > 0) await this.compact();
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}
