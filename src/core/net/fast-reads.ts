/**
 * Reads on a plain TCP link go through `onread` into a buffer the transport keeps and
 * reuses (Node otherwise allocates a fresh 64 KiB buffer for every read): while reads fill
 * it, it doubles up to 1 MiB, so a big FETCH through the splice costs a few hundred reads
 * and almost no allocation; a small read shrinks it back, so an idle session holds 16 KiB
 * at most. A buffer still referenced by a pending write is never read into again: the sink
 * says so, the socket pauses until the write drained, and the next read gets a new buffer.
 */
const READ_SMALL = 16 * 1024;
const READ_MAX = 1024 * 1024;

/** Where the chunks of an onread socket go; swapped from the line reader to the splice. */
export interface ChunkRouter {
  /**
   * Take a chunk of the shared read buffer. Return true when nothing refers to it any more
   * (reading goes on into it), false when a pending write still does (the socket pauses).
   */
  sink: (chunk: Buffer) => boolean;
}

export function reusingOnread(router: ChunkRouter): {
  buffer: () => Buffer;
  callback: (n: number, buf: Buffer) => boolean;
} {
  let size = READ_SMALL;
  let current: Buffer | undefined;
  let free = true;
  return {
    // Called once at connect and after every read, for the next read.
    buffer: () => {
      if (!current || !free || current.length !== size) current = Buffer.allocUnsafe(size);
      free = true;
      return current;
    },
    callback: (n, buf) => {
      if (n === buf.length) size = Math.min(READ_MAX, size * 2);
      else if (n < READ_SMALL / 4) size = READ_SMALL;
      free = router.sink(buf.subarray(0, n));
      return free;
    },
  };
}
