/**
 * The brakes' news for the other gateway nodes (brakes.ts), sent in batches: under a
 * guessing storm each failed login would otherwise be one NOTIFY, one database round trip.
 * What comes within BRAKE_BATCH_MS goes as one message, the batch cut before it outgrows a
 * NOTIFY's payload; the other nodes count a little later, never less.
 */
import type { Cluster } from '../state/types.js';

/** how long a failure may wait for others before it is sent */
export const BRAKE_BATCH_MS = 100;
/** a batch's size as JSON, under PostgreSQL's 8,000-byte NOTIFY payload with the envelope */
const MAX_BATCH_CHARS = 7000;
/** entries taken from one message heard: more is not a message of ours */
export const MAX_HEARD = 500;

export class BrakeOutbox<T> {
  private batch: T[] = [];
  private chars = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly cluster: Pick<Cluster, 'publish'>,
    private readonly topic: string,
    /** 0: each item at once, alone */
    private readonly batchMs = BRAKE_BATCH_MS,
  ) {}

  send(item: T): void {
    if (this.batchMs <= 0) return this.cluster.publish(this.topic, item);
    const size = JSON.stringify(item).length + 1;
    if (this.chars + size > MAX_BATCH_CHARS) this.flush();
    this.batch.push(item);
    this.chars += size;
    if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), this.batchMs);
      this.timer.unref();
    }
  }

  /** What waits goes now (the batch is full, or the gateway stops). */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.batch.length === 0) return;
    this.cluster.publish(this.topic, { m: this.batch });
    this.batch = [];
    this.chars = 0;
  }
}

/** The entries of a message heard: a batch's, or one (as a node before batches sent it). */
export function entriesOf(data: unknown): unknown[] {
  const m = (data as { m?: unknown } | null)?.m;
  if (Array.isArray(m)) return m.slice(0, MAX_HEARD);
  return [data];
}
