/**
 * The control socket of the running `autoport proxy` (protocol.ts): other commands on the
 * same host ask it for snapshots and send it account changes, so the proxy stays the only
 * writer of the state.
 *
 * Only the owner can connect: socket-file.ts creates the socket 0600 without a window.
 */
import { lstat, unlink } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { dirname, resolve } from 'node:path';
import { OperatorError } from '../errors.js';
import { silentLogger, type Logger } from '../log/logger.js';
import { frame, LineReader } from './framing.js';
import { bindPrivately, checkPathLength, warnIfFolderIsShared } from './socket-file.js';
import {
  MAX_LINE_BYTES,
  type ControlError,
  type ControlMethod,
  type ControlResponse,
  type MonitorSnapshot,
  type ResultOf,
} from './protocol.js';

export interface ControlLimits {
  /** open control connections at once; more are answered EBUSY and closed */
  maxConnections: number;
  /** `watch` push interval bounds and default */
  watchMinMs: number;
  watchMaxMs: number;
  watchDefaultMs: number;
  /** a push is skipped while this much output waits unsent for a slow reader */
  pushSkipBytes: number;
  /** how long a connect to an existing socket may take before it counts as alive */
  probeTimeoutMs: number;
  maxLineBytes: number;
}

export const CONTROL_LIMITS: ControlLimits = {
  maxConnections: 32,
  watchMinMs: 200,
  watchMaxMs: 10_000,
  watchDefaultMs: 1000,
  pushSkipBytes: 1024 * 1024,
  probeTimeoutMs: 1000,
  maxLineBytes: MAX_LINE_BYTES,
};

/**
 * One function per method except `watch` (the server runs it over `snapshot`). Params come
 * from the wire unchecked: each handler validates its own. An OperatorError reaches the
 * client as {message, hint, code}; anything else is logged and answered EINTERNAL.
 */
export type ControlHandlers = {
  [M in Exclude<ControlMethod, 'watch'>]: (params: unknown) => ResultOf<M> | Promise<ResultOf<M>>;
};

export interface ControlServerOptions {
  socketPath: string;
  logger?: Logger;
  handlers: ControlHandlers;
  limits?: Partial<ControlLimits>;
}

export interface ControlServer {
  readonly path: string;
  /** open connections now */
  connections(): number;
  /** stop listening, close every connection, remove the socket file (if still ours) */
  close(): Promise<void>;
}

/** every method the protocol names; anything else is EUNKNOWNMETHOD */
const METHODS: Record<ControlMethod, true> = {
  hello: true,
  snapshot: true,
  watch: true,
  'accounts.change': true,
  'accounts.import': true,
  'transfer.start': true,
};

interface Connection {
  socket: Socket;
  watch?: NodeJS.Timeout;
  skippedPushes: number;
  /** a pushed snapshot is being built */
  building?: boolean;
}

export async function startControlServer(opts: ControlServerOptions): Promise<ControlServer> {
  const limits = { ...CONTROL_LIMITS, ...opts.limits };
  const logger = opts.logger ?? silentLogger;
  const path = resolve(opts.socketPath);
  const dir = dirname(path);
  checkPathLength(path, dir);
  await warnIfFolderIsShared(dir, logger);

  const conns = new Set<Connection>();
  /** every socket, refused ones too, so close() need not wait for any of them */
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    if (conns.size >= limits.maxConnections) {
      logger.warn('control connection refused: too many open', { max: limits.maxConnections });
      refuse(socket, {
        message: `the proxy already has ${limits.maxConnections} control connections open`,
        hint: 'close a monitor or wait for other commands to finish',
        code: 'EBUSY',
      });
      return;
    }
    const conn: Connection = { socket, skippedPushes: 0 };
    conns.add(conn);
    socket.once('close', () => {
      if (conn.watch) clearInterval(conn.watch);
      conns.delete(conn);
    });
    serve(conn, opts.handlers, limits, logger);
  });
  server.on('error', (err) => logger.error('control socket error', { err }));

  await bindPrivately(server, path, dir, limits.probeTimeoutMs);
  const own = await lstat(path);
  logger.info('control socket listening', { path });

  let closing: Promise<void> | undefined;
  return {
    path,
    connections: () => conns.size,
    close() {
      closing ??= (async () => {
        for (const c of conns) if (c.watch) clearInterval(c.watch);
        for (const s of sockets) s.destroy();
        await new Promise<void>((r) => server.close(() => r()));
        // Remove the path only while it still names our socket: a proxy started after us
        // (once we stopped answering) may have put its own there.
        const now = await lstat(path).catch(() => undefined);
        if (now && now.ino === own.ino && now.dev === own.dev)
          await unlink(path).catch(() => undefined);
      })();
      return closing;
    },
  };
}

function send(socket: Socket, message: unknown): void {
  if (!socket.destroyed && socket.writable) socket.write(frame(message));
}

/**
 * id 0: the answer to something that was not a readable request; the connection ends.
 * What the client still sends is read and dropped, or its FIN would never be seen.
 */
function refuse(socket: Socket, error: ControlError): void {
  socket.on('error', () => undefined);
  socket.removeAllListeners('data');
  socket.resume();
  if (!socket.destroyed && socket.writable) socket.end(frame({ id: 0, ok: false, error }));
  setTimeout(() => socket.destroy(), 1000).unref();
}

/** A failed request's answer: the operator's error as it is, anything else logged. */
function errorResponse(id: number, method: string, err: unknown, logger: Logger): ControlResponse {
  if (err instanceof OperatorError)
    return { id, ok: false, error: { message: err.message, hint: err.hint, code: err.code } };
  logger.error('control request failed', { method, err });
  return {
    id,
    ok: false,
    error: {
      message: `the proxy could not do ${method}: internal error`,
      hint: "see the proxy's log",
      code: 'EINTERNAL',
    },
  };
}

function unknownMethod(id: number, method: string): ControlResponse {
  return {
    id,
    ok: false,
    error: {
      message: `unknown control method ${JSON.stringify(method.slice(0, 64))}`,
      hint: 'the proxy and this command may be different autoport versions: use the same one',
      code: 'EUNKNOWNMETHOD',
    },
  };
}

function serve(
  conn: Connection,
  handlers: ControlHandlers,
  limits: ControlLimits,
  logger: Logger,
): void {
  const { socket } = conn;
  const reader = new LineReader(limits.maxLineBytes);
  let ended = false;
  socket.on('error', (err) => logger.debug('control connection error', { err }));
  const reply = (response: ControlResponse): void => send(socket, response);

  const stopReading = (error: ControlError): void => {
    ended = true;
    refuse(socket, error);
  };

  const startWatch = async (params: Record<string, unknown>): Promise<MonitorSnapshot> => {
    const asked = params.intervalMs;
    if (asked !== undefined && (typeof asked !== 'number' || !Number.isFinite(asked)))
      throw new OperatorError('intervalMs must be a number', 'send milliseconds', 'EPARAMS');
    const every = Math.min(
      limits.watchMaxMs,
      Math.max(limits.watchMinMs, asked ?? limits.watchDefaultMs),
    );
    const first = (await handlers.snapshot({})) as MonitorSnapshot;
    if (conn.watch) clearInterval(conn.watch);
    conn.watch = setInterval(() => {
      // A reader that does not keep up loses pushes instead of growing our buffer; the
      // next snapshot it does get is complete anyway.
      if (socket.writableLength > limits.pushSkipBytes) {
        if (conn.skippedPushes++ === 0)
          logger.debug('control client reads slowly; skipping snapshots', {
            waiting: socket.writableLength,
          });
        return;
      }
      if (conn.building) return; // a slow store: one snapshot at a time per client
      conn.building = true;
      Promise.resolve(handlers.snapshot({}))
        .then(
          (snapshot) => !socket.destroyed && send(socket, { push: 'snapshot', snapshot }),
          (err: unknown) => logger.error('building a monitor snapshot failed', { err }),
        )
        .finally(() => (conn.building = false));
    }, every);
    conn.watch.unref();
    return first;
  };

  const dispatch = async (id: number, method: string, params: Record<string, unknown>) => {
    try {
      const result =
        method === 'watch'
          ? await startWatch(params)
          : await handlers[method as Exclude<ControlMethod, 'watch'>](params);
      reply({ id, ok: true, result });
    } catch (err) {
      reply(errorResponse(id, method, err, logger));
    }
  };

  const onLine = (line: string): void => {
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch {
      return stopReading({
        message: 'a control request is not JSON',
        hint: 'send one JSON object per line',
        code: 'EBADJSON',
      });
    }
    const req = msg as { id?: unknown; method?: unknown; params?: unknown };
    const id = req !== null && typeof req === 'object' ? req.id : undefined;
    if (
      typeof id !== 'number' ||
      !Number.isSafeInteger(id) ||
      id < 1 ||
      typeof req.method !== 'string'
    )
      return stopReading({
        message: 'a control request needs a positive integer id and a method',
        hint: 'send {"id":1,"method":"hello"}',
        code: 'EBADREQUEST',
      });
    const method = req.method;
    if (!Object.hasOwn(METHODS, method)) return reply(unknownMethod(id, method));
    const params = req.params ?? {};
    if (typeof params !== 'object' || params === null || Array.isArray(params))
      return reply({
        id,
        ok: false,
        error: { message: 'params must be an object', hint: 'send "params":{}', code: 'EPARAMS' },
      });
    void dispatch(id, method, params as Record<string, unknown>);
  };

  socket.on('data', (chunk: Buffer) => {
    const lines = reader.push(chunk);
    if (lines === 'overflow')
      return stopReading({
        message: `a control request line is longer than ${limits.maxLineBytes} bytes`,
        hint: 'send smaller requests (e.g. import the list in parts)',
        code: 'ELINETOOLONG',
      });
    for (const line of lines) {
      if (ended) return;
      onLine(line);
    }
    // A client that sends faster than it reads our answers stops being read.
    if (socket.writableNeedDrain && !ended) {
      socket.pause();
      socket.once('drain', () => socket.resume());
    }
  });
}
