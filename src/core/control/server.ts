/**
 * The control socket of the running `autoport proxy` (protocol.ts): other commands on the
 * same host ask it for snapshots and send it account changes, so the proxy stays the only
 * writer of the state.
 *
 * Who may connect: Linux checks write permission on the socket file at connect(2) (unix(7)),
 * so a 0600 socket admits only its owner (and root). The mode must hold from the first
 * moment the path exists: the socket is bound inside a fresh private folder (mkdtemp: 0700,
 * nobody else can even reach the file), chmod'ed to 0600 there, and only then hard-linked to
 * its configured path. link(2) never replaces an existing file, so a proxy that started
 * meanwhile is not silently displaced. Changing process.umask around listen() would also
 * work, but the umask is process-wide and would leak into files other code creates at the
 * same instant from libuv's thread pool.
 */
import { chmod, link, lstat, mkdtemp, rm, stat, unlink } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { OperatorError } from '../errors.js';
import { silentLogger, type Logger } from '../log/logger.js';
import { frame, LineReader } from './framing.js';
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

/** Linux keeps 108 bytes for sun_path with its NUL; macOS 104. */
const MAX_SOCKET_PATH = process.platform === 'linux' ? 107 : 103;
/** what the private folder adds to the parent's path: "/.apXXXXXX/s" */
const TEMP_SUFFIX_BYTES = 12;

interface Connection {
  socket: Socket;
  watch?: NodeJS.Timeout;
  skippedPushes: number;
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

function checkPathLength(path: string, dir: string): void {
  const longest = Math.max(Buffer.byteLength(path), Buffer.byteLength(dir) + TEMP_SUFFIX_BYTES);
  if (longest > MAX_SOCKET_PATH)
    throw new OperatorError(
      `the control socket path ${path} is too long for a Unix socket (at most ${MAX_SOCKET_PATH} bytes, with room for a temporary name beside it)`,
      'set control.socket in the config to a shorter path, e.g. /run/autoport/autoport.sock',
      'ENAMETOOLONG',
    );
}

/** Anyone who can write the folder can swap the socket for their own and hear the commands. */
async function warnIfFolderIsShared(dir: string, logger: Logger): Promise<void> {
  const st = await stat(dir).catch(() => undefined);
  if (!st) return;
  if ((st.mode & 0o022) !== 0 && (st.mode & 0o1000) === 0)
    logger.warn('the control socket folder is writable by other users', {
      folder: dir,
      hint: `chmod go-w ${dir}, or set control.socket to a folder only this user can write`,
    });
}

async function bindPrivately(
  server: Server,
  path: string,
  dir: string,
  probeTimeoutMs: number,
): Promise<void> {
  await clearStale(path, probeTimeoutMs);
  const privateDir = await mkdtemp(join(dir, '.ap')).catch((err: NodeJS.ErrnoException) => {
    throw new OperatorError(
      `cannot create the control socket in ${dir}: ${err.code ?? err.message}`,
      'create that folder (owned by the user that runs the proxy), or set control.socket in the config',
      err.code ?? 'ECONTROL',
      { cause: err },
    );
  });
  const temp = join(privateDir, 's');
  try {
    await new Promise<void>((ok, fail) => {
      server.once('error', fail);
      server.listen(temp, () => {
        server.off('error', fail);
        ok();
      });
    });
    await chmod(temp, 0o600);
    try {
      await link(temp, path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // Something appeared at the path since clearStale: look again, once.
      await clearStale(path, probeTimeoutMs);
      await link(temp, path);
    }
  } catch (err) {
    await new Promise<void>((r) => server.close(() => r()));
    throw err instanceof OperatorError
      ? err
      : new OperatorError(
          `cannot create the control socket ${path}: ${(err as Error).message}`,
          'check the folder and its permissions, or set control.socket in the config',
          (err as NodeJS.ErrnoException).code ?? 'ECONTROL',
          { cause: err },
        );
  } finally {
    // The listening socket lives on through the link; libuv also unlinks the temp name
    // when the server closes, which is then a no-op.
    await rm(privateDir, { recursive: true, force: true });
  }
}

/** Refuse a live socket, remove a dead one, leave anything that is not a socket alone. */
async function clearStale(path: string, probeTimeoutMs: number): Promise<void> {
  const st = await lstat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (!st) return;
  if (!st.isSocket())
    throw new OperatorError(
      `${path} exists and is not a socket`,
      'remove it, or set control.socket in the config to another path',
      'ENOTSOCK',
    );
  const found = await probe(path, probeTimeoutMs);
  if (found === 'live')
    throw new OperatorError(
      `another autoport proxy answers on the control socket ${path}`,
      'stop that proxy first, or give this one another control.socket (and state file)',
      'EADDRINUSE',
    );
  if (found === 'denied')
    throw new OperatorError(
      `the control socket ${path} belongs to another user`,
      'run the proxy as the user that owns it (e.g. sudo -u autoport autoport proxy), or remove it if no proxy runs',
      'EACCES',
    );
  if (found === 'stale') await unlink(path).catch(() => undefined);
}

function probe(path: string, timeoutMs: number): Promise<'live' | 'stale' | 'missing' | 'denied'> {
  return new Promise((done) => {
    const s = connect(path);
    const finish = (r: 'live' | 'stale' | 'missing' | 'denied'): void => {
      clearTimeout(timer);
      s.destroy();
      done(r);
    };
    // A listener that does not accept within the timeout is still somebody's: keep off.
    const timer = setTimeout(() => finish('live'), timeoutMs);
    s.once('connect', () => finish('live'));
    s.once('error', (err: NodeJS.ErrnoException) =>
      finish(
        err.code === 'ECONNREFUSED'
          ? 'stale'
          : err.code === 'ENOENT'
            ? 'missing'
            : err.code === 'EACCES' || err.code === 'EPERM'
              ? 'denied'
              : 'live',
      ),
    );
  });
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

  const startWatch = (params: Record<string, unknown>): MonitorSnapshot => {
    const asked = params.intervalMs;
    if (asked !== undefined && (typeof asked !== 'number' || !Number.isFinite(asked)))
      throw new OperatorError('intervalMs must be a number', 'send milliseconds', 'EPARAMS');
    const every = Math.min(
      limits.watchMaxMs,
      Math.max(limits.watchMinMs, asked ?? limits.watchDefaultMs),
    );
    const first = handlers.snapshot({}) as MonitorSnapshot;
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
      try {
        send(socket, { push: 'snapshot', snapshot: handlers.snapshot({}) });
      } catch (err) {
        logger.error('building a monitor snapshot failed', { err });
      }
    }, every);
    conn.watch.unref();
    return first;
  };

  const dispatch = async (id: number, method: string, params: Record<string, unknown>) => {
    try {
      const result =
        method === 'watch'
          ? startWatch(params)
          : await handlers[method as Exclude<ControlMethod, 'watch'>](params);
      reply({ id, ok: true, result });
    } catch (err) {
      if (err instanceof OperatorError)
        reply({ id, ok: false, error: { message: err.message, hint: err.hint, code: err.code } });
      else {
        logger.error('control request failed', { method, err });
        reply({
          id,
          ok: false,
          error: {
            message: `the proxy could not do ${method}: internal error`,
            hint: "see the proxy's log",
            code: 'EINTERNAL',
          },
        });
      }
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
    if (!Object.hasOwn(METHODS, method))
      return reply({
        id,
        ok: false,
        error: {
          message: `unknown control method ${JSON.stringify(method.slice(0, 64))}`,
          hint: 'the proxy and this command may be different autoport versions: use the same one',
          code: 'EUNKNOWNMETHOD',
        },
      });
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
