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
  onClose(result: SpliceResult): void;
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

  // One timer per session, re-armed lazily: a busy session costs no timer churn per chunk.
  const armIdle = (): void => {
    const wait = lastActivity + opts.idleMs - Date.now();
    if (wait <= 0) return finish('idle-timeout');
    idle = setTimeout(armIdle, wait);
    idle.unref?.();
  };

  const pump = (from: Socket, to: Socket, count: (n: number) => void): void => {
    from.on('data', (chunk: Buffer) => {
      lastActivity = Date.now();
      count(chunk.length);
      if (!to.writable) return;
      if (!to.write(chunk)) {
        from.pause();
        to.once('drain', () => from.resume());
      }
    });
  };
  pump(client, backend, (n) => (bytesIn += n));
  if (opts.backendReader) {
    let seq = 0;
    let waiting = 0;
    opts.backendReader((chunk) => {
      lastActivity = Date.now();
      bytesOut += chunk.length;
      if (!client.writable) return true;
      const mine = ++seq;
      // The write callback says this chunk left the stream (to the kernel, or into TLS);
      // only then may the backend read into its buffer again. A TLS socket holds even
      // small writes for a moment, and never emits 'drain' for them.
      client.write(chunk, () => {
        if (waiting !== mine) return;
        waiting = 0;
        backend.resume();
      });
      if (client.writableLength === 0) return true;
      waiting = mine;
      return false;
    });
  } else pump(backend, client, (n) => (bytesOut += n));
  client.on('end', () => finish('client-closed'));
  backend.on('end', () => finish('backend-closed'));
  client.on('close', () => finish('client-closed'));
  backend.on('close', () => finish('backend-closed'));
  client.on('error', (err) => finish('client-closed', err.message));
  backend.on('error', (err) => finish('backend-closed', err.message));

  if (opts.toClient && opts.toClient.length > 0) {
    bytesOut += opts.toClient.length;
    client.write(opts.toClient);
  }
  if (opts.toBackend && opts.toBackend.length > 0) {
    bytesIn += opts.toBackend.length;
    backend.write(opts.toBackend);
  }
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
