/**
 * After login the gateway steps out of the way: bytes flow both ways untouched (the
 * client sees the backend's own post-login capabilities and replies), with backpressure,
 * byte counts, an idle timeout and one close reason. This is the tcpproxy "copy" half;
 * deciding where to connect happened before.
 */
import type { Socket } from 'node:net';
import type { CloseReason } from '../bus.js';

export interface SpliceOptions {
  /** close when neither side sent anything for this long (RFC 3501 5.4: >= 30 min for IMAP) */
  idleMs: number;
  /** bytes the client sent beyond its login command: forwarded to the backend first */
  toBackend?: Buffer;
  /** bytes the backend sent beyond the login exchange: forwarded to the client first */
  toClient?: Buffer;
  /**
   * the backend reads through onread into a reused buffer: take its chunks here instead of
   * 'data' events; the sink says whether the chunk's memory is free again (see upstreams)
   */
  backendReader?: (sink: (chunk: Buffer) => boolean) => void;
  /** sees the client's bytes and may replace the backend's (POP3 UIDL continuity) */
  filter?: SpliceFilter;
  onClose(result: SpliceResult): void;
  /** a bug in the splice's own handlers: it ends with reason 'error' after this */
  onFault?(err: unknown): void;
}

/**
 * A line-aware view of the stream for one purpose. fromBackend returns the bytes the client
 * gets: the chunk itself when nothing changed, else a new Buffer (the chunk's memory is then
 * free). A throw ends the session like any fault of the splice's own handlers.
 */
export interface SpliceFilter {
  fromClient(chunk: Buffer): void;
  fromBackend(chunk: Buffer): Buffer;
}

export interface SpliceResult {
  reason: CloseReason;
  /** bytes from the client to the backend */
  bytesIn: number;
  /** bytes from the backend to the client */
  bytesOut: number;
  detail?: string;
}

export interface Splice {
  /** end the session now (account locked, shutdown) */
  close(reason: CloseReason): void;
  readonly bytesIn: number;
  readonly bytesOut: number;
}

/** how long a half-closed side may take to flush before it is destroyed */
const LINGER_MS = 5_000;

/**
 * The sink for a backend read through onread: writes to the client, and returns false
 * (the backend pauses) until that write has left.
 */
function clientSink(
  client: Socket,
  backend: Socket,
  pass: (chunk: Buffer) => Buffer,
): (chunk: Buffer) => boolean {
  let seq = 0;
  let waiting = 0;
  return (chunk) => {
    const out = pass(chunk);
    if (!client.writable || out.length === 0) return true;
    const mine = ++seq;
    // The write callback says this chunk left the stream (to the kernel, or into TLS);
    // only then may the backend read into its buffer again. A TLS socket holds even
    // small writes for a moment, and never emits 'drain' for them.
    client.write(out, () => {
      if (waiting !== mine) return;
      waiting = 0;
      backend.resume();
    });
    if (client.writableLength === 0) return true;
    waiting = mine;
    return false;
  };
}

/** Count and write `first` (if any) through `pass`. */
function sendFirst(
  to: Socket,
  first: Buffer | undefined,
  pass: (b: Buffer) => Buffer,
  count: (n: number) => void,
): void {
  if (!first || first.length === 0) return;
  count(first.length);
  to.write(pass(first));
}

/** Tell the fault reporter; a broken reporter must not stop the close. */
function report(onFault: ((err: unknown) => void) | undefined, err: unknown): void {
  try {
    onFault?.(err);
  } catch {
    // the reporter is broken too; closing matters more
  }
}

export function splice(client: Socket, backend: Socket, opts: SpliceOptions): Splice {
  let bytesIn = 0;
  let bytesOut = 0;
  let done = false;
  let idle: NodeJS.Timeout | undefined;
  let lastActivity = Date.now();

  const finish = (reason: CloseReason, detail?: string): void => {
    if (done) return;
    done = true;
    if (idle) clearTimeout(idle);
    for (const s of [client, backend]) {
      if (!s.destroyed) {
        s.end();
        setTimeout(() => s.destroy(), LINGER_MS).unref();
      }
    }
    opts.onClose({ reason, bytesIn, bytesOut, detail });
  };

  // Socket callbacks run outside any caller's try: a throw there would be an uncaught
  // exception for the whole process. It ends this session instead.
  const fault = (err: unknown): void => {
    report(opts.onFault, err);
    client.destroy();
    backend.destroy();
    try {
      finish('error', err instanceof Error ? err.message : String(err));
    } catch (e) {
      report(opts.onFault, e);
    }
  };
  const guarded =
    <A extends unknown[], R>(fn: (...args: A) => R, fallback: R) =>
    (...args: A): R => {
      try {
        return fn(...args);
      } catch (err) {
        fault(err);
        return fallback;
      }
    };

  // One timer per session, re-armed lazily: a busy session costs no timer churn per chunk.
  const armIdle = (): void => {
    const wait = lastActivity + opts.idleMs - Date.now();
    if (wait <= 0) return finish('idle-timeout');
    idle = setTimeout(guarded(armIdle, undefined), wait);
    idle.unref?.();
  };

  const toClient = (chunk: Buffer): Buffer => opts.filter?.fromBackend(chunk) ?? chunk;
  const toBackend = (chunk: Buffer): Buffer => {
    opts.filter?.fromClient(chunk);
    return chunk;
  };

  const pump = (
    from: Socket,
    to: Socket,
    count: (n: number) => void,
    pass: (chunk: Buffer) => Buffer,
  ): void => {
    from.on(
      'data',
      guarded((chunk: Buffer) => {
        lastActivity = Date.now();
        count(chunk.length);
        const out = pass(chunk);
        if (!to.writable || out.length === 0) return;
        if (!to.write(out)) {
          from.pause();
          to.once('drain', () => from.resume());
        }
      }, undefined),
    );
  };
  pump(client, backend, (n) => (bytesIn += n), toBackend);
  if (opts.backendReader) {
    const sink = clientSink(client, backend, toClient);
    opts.backendReader(
      guarded((chunk: Buffer): boolean => {
        lastActivity = Date.now();
        bytesOut += chunk.length;
        return sink(chunk);
      }, true),
    );
  } else pump(backend, client, (n) => (bytesOut += n), toClient);
  const ended = (reason: CloseReason, detail?: string): void =>
    guarded(() => finish(reason, detail), undefined)();
  client.on('end', () => ended('client-closed'));
  backend.on('end', () => ended('backend-closed'));
  client.on('close', () => ended('client-closed'));
  backend.on('close', () => ended('backend-closed'));
  client.on('error', (err) => ended('client-closed', err.message));
  backend.on('error', (err) => ended('backend-closed', err.message));

  // bytes read past the login exchange go first, through the same filters
  sendFirst(client, opts.toClient, guarded(toClient, Buffer.alloc(0)), (n) => (bytesOut += n));
  sendFirst(backend, opts.toBackend, guarded(toBackend, Buffer.alloc(0)), (n) => (bytesIn += n));
  client.resume();
  backend.resume();
  armIdle();

  return {
    close: (reason) => {
      if (done) return;
      finish(reason);
      client.destroy();
      backend.destroy();
    },
    get bytesIn() {
      return bytesIn;
    },
    get bytesOut() {
      return bytesOut;
    },
  };
}
