/**
 * The checkpoint's state and the operations its journal holds, without I/O: what
 * checkpoint.ts reads from disk, applies, and writes back (see there for the invariants).
 * The operation codes and the snapshot's layout are the on-disk format: journals and
 * snapshots written by earlier versions must keep reading the same.
 */

export interface MapEntry {
  /** destination UID; 0 while unknown (destination without UIDPLUS, or rebuilt by hash) */
  d: number;
  /** SHA-256 (hex) of the bytes received from the source */
  h: string;
  /** size in bytes of the literal received */
  z: number;
  /** flags last written to the destination, space separated, sorted; or UNKNOWN_FLAGS */
  f: string;
}

/**
 * The flags of a copy matched by hash: unknown until set, and equal to no flag set, so a run
 * interrupted before it set them has them set by the next run's listing.
 */
export const UNKNOWN_FLAGS = '?';

/** A destination message we know the content of but no source UID is bound to. */
export interface PoolEntry {
  d: number;
  h: string;
  z: number;
  /** "rebase": from a map whose source UIDVALIDITY changed; "orphan": found above the watermark */
  k: 'rebase' | 'orphan';
}

/** A source message whose copy was deleted on the destination after the account moved. */
export interface GoneEntry {
  h: string;
  z: number;
}

export type CheckpointOp =
  | { t: 'head'; srcUv: number; dstUv: number }
  | { t: 'wm'; uid: number }
  | { t: 'm'; s: number; e: MapEntry }
  | { t: 'f'; s: number; f: string }
  | { t: 'x'; s: number }
  | { t: 'gone'; s: number }
  | { t: 'p'; e: PoolEntry }
  | { t: 'pd'; d: number }
  | { t: 'rebase'; srcUv: number }
  | { t: 'dstreset'; dstUv: number }
  | { t: 'ms'; modseq: string; lastUid: number };

export interface Snapshot {
  v: 2;
  srcUv: number;
  dstUv: number;
  wm: number;
  modseq?: string;
  lastUid: number;
  map: [number, number, string, number, string][];
  pool: [number, string, number, 'rebase' | 'orphan'][];
  /** source UID, hash, size of copies the user deleted on the destination (since v2) */
  gone: [number, string, number][];
}

/** Version 1 (before "gone" existed): what checkpoints written until issue #12 hold. */
export type SnapshotV1 = Omit<Snapshot, 'v' | 'gone'> & { v: 1 };

/**
 * Bring a snapshot read from disk to the current version (it is written back in that version
 * at the next compaction). An unknown version is refused rather than guessed at.
 */
export function upgradeSnapshot(s: Snapshot | SnapshotV1 | undefined): Snapshot | undefined {
  if (!s) return undefined;
  if (s.v === 1) return { ...s, v: 2, gone: [] };
  if (s.v === 2) return s;
  throw new Error(
    `checkpoint snapshot version ${String((s as { v: unknown }).v)} is newer than this AutoPort understands`,
  );
}

/** The checkpoint's state and its operations, without I/O (unit-tested on its own). */
export class CheckpointState {
  srcUv = 0;
  dstUv = 0;
  /** destination UIDNEXT before this run's first APPEND; 0 = none recorded yet */
  watermark = 0;
  modseq: string | undefined;
  lastUid = 0;
  readonly map = new Map<number, MapEntry>();
  /** destination UID -> pool entry */
  readonly pool = new Map<number, PoolEntry>();
  /** source UID -> content of a copy the user deleted on the destination */
  readonly gone = new Map<number, GoneEntry>();

  apply(op: CheckpointOp): void {
    // deletions leave stale index entries, which lookups skip; additions rebuild it
    if (op.t === 'p' || op.t === 'rebase' || op.t === 'dstreset') this.poolIndex = null;
    switch (op.t) {
      case 'head':
        this.srcUv = op.srcUv;
        this.dstUv = op.dstUv;
        break;
      case 'wm':
        this.watermark = op.uid;
        break;
      case 'm':
        this.map.set(op.s, { ...op.e });
        if (op.e.d) this.pool.delete(op.e.d);
        if (op.s > this.lastUid) this.lastUid = op.s;
        break;
      case 'f': {
        const e = this.map.get(op.s);
        if (e) e.f = op.f;
        break;
      }
      case 'x':
        this.map.delete(op.s);
        this.gone.delete(op.s);
        break;
      case 'gone': {
        const e = this.map.get(op.s);
        if (!e) break;
        this.gone.set(op.s, { h: e.h, z: e.z });
        this.map.delete(op.s);
        break;
      }
      case 'p':
        this.pool.set(op.e.d, { ...op.e });
        break;
      case 'pd':
        this.pool.delete(op.d);
        break;
      case 'rebase':
        // the source folder was recreated: its old UIDs mean nothing, but the destination
        // messages we made are still there and known by hash
        for (const e of this.map.values())
          if (e.d) this.pool.set(e.d, { d: e.d, h: e.h, z: e.z, k: 'rebase' });
        this.map.clear();
        // kept by source UID only, which means nothing now: those messages are copied again
        this.gone.clear();
        this.srcUv = op.srcUv;
        this.modseq = undefined;
        this.lastUid = 0;
        break;
      case 'dstreset':
        // the destination folder was recreated: every destination UID is unknown again, and
        // the whole folder must be hashed (watermark 1) to find what is already there
        for (const e of this.map.values()) e.d = 0;
        this.pool.clear();
        // a folder recreated on the destination is filled again, deletions in it included
        this.gone.clear();
        this.dstUv = op.dstUv;
        this.watermark = 1;
        // what is not found by hash is dropped from the map, and only a full listing of the
        // source (not the modseq delta) brings those source UIDs back
        this.modseq = undefined;
        break;
      case 'ms':
        this.modseq = op.modseq;
        this.lastUid = Math.max(this.lastUid, op.lastUid);
        break;
    }
  }

  /** destination UIDs bound to some source UID */
  boundDestUids(): Set<number> {
    const out = new Set<number>();
    for (const e of this.map.values()) if (e.d) out.add(e.d);
    return out;
  }

  /** A pool entry with this hash (and size), or undefined. */
  findInPool(sha: string, size: number): PoolEntry | undefined {
    if (this.pool.size === 0) return undefined;
    if (!this.poolIndex) {
      this.poolIndex = new Map();
      for (const p of this.pool.values()) {
        const list = this.poolIndex.get(p.h) ?? [];
        list.push(p.d);
        this.poolIndex.set(p.h, list);
      }
    }
    for (const d of this.poolIndex.get(sha) ?? []) {
      const p = this.pool.get(d);
      if (p && p.z === size) return p;
    }
    return undefined;
  }

  private poolIndex: Map<string, number[]> | null = null;

  toSnapshot(): Snapshot {
    return {
      v: 2,
      srcUv: this.srcUv,
      dstUv: this.dstUv,
      wm: this.watermark,
      modseq: this.modseq,
      lastUid: this.lastUid,
      map: [...this.map].map(([s, e]) => [s, e.d, e.h, e.z, e.f]),
      pool: [...this.pool.values()].map((p) => [p.d, p.h, p.z, p.k]),
      gone: [...this.gone].map(([sUid, g]) => [sUid, g.h, g.z]),
    };
  }

  static fromSnapshot(raw: Snapshot | SnapshotV1 | undefined): CheckpointState {
    const st = new CheckpointState();
    const s = upgradeSnapshot(raw);
    if (!s) return st;
    st.srcUv = s.srcUv;
    st.dstUv = s.dstUv;
    st.watermark = s.wm;
    st.modseq = s.modseq;
    st.lastUid = s.lastUid;
    for (const [sUid, d, h, z, f] of s.map) st.map.set(sUid, { d, h, z, f });
    for (const [d, h, z, k] of s.pool) st.pool.set(d, { d, h, z, k });
    for (const [sUid, h, z] of s.gone) st.gone.set(sUid, { h, z });
    return st;
  }
}
