/**
 * Bounded parallel work: a fixed number of slots (connections per side) take items from a
 * shared queue. The limit can shrink while running (a server throttled us): a slot whose
 * number is at or above the current limit finishes its item and retires.
 */
import type { AdaptiveLimit } from './throttle.js';

export async function runPool<T>(
  items: readonly T[],
  limit: AdaptiveLimit | number,
  worker: (item: T, slot: number) => Promise<void>,
): Promise<void> {
  const queue = [...items];
  const max = typeof limit === 'number' ? limit : limit.max;
  const current = (): number => (typeof limit === 'number' ? limit : limit.value);
  const slots = Math.max(1, Math.min(max, queue.length));
  const errors: unknown[] = [];
  await Promise.all(
    Array.from({ length: slots }, async (_, slot) => {
      while (queue.length > 0) {
        // retire while throttled; the limit never drops below 1, so slot 0 always goes on
        if (slot >= current()) return;
        const item = queue.shift() as T;
        try {
          await worker(item, slot);
        } catch (err) {
          errors.push(err);
        }
      }
    }),
  );
  if (errors.length > 0) throw errors[0];
}
