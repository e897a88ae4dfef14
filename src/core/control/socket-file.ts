/**
 * The control socket's file (server.ts): created so that no other user can ever connect,
 * never displacing a live proxy, and cleaning up after a dead one.
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
import { connect, type Server } from 'node:net';
import { join } from 'node:path';
import { OperatorError } from '../errors.js';
import type { Logger } from '../log/logger.js';

/** Linux keeps 108 bytes for sun_path with its NUL; macOS 104. */
const MAX_SOCKET_PATH = process.platform === 'linux' ? 107 : 103;
/** what the private folder adds to the parent's path: "/.apXXXXXX/s" */
const TEMP_SUFFIX_BYTES = 12;

export function checkPathLength(path: string, dir: string): void {
  const longest = Math.max(Buffer.byteLength(path), Buffer.byteLength(dir) + TEMP_SUFFIX_BYTES);
  if (longest > MAX_SOCKET_PATH)
    throw new OperatorError(
      `the control socket path ${path} is too long for a Unix socket (at most ${MAX_SOCKET_PATH} bytes, with room for a temporary name beside it)`,
      'set control.socket in the config to a shorter path, e.g. /run/autoport/autoport.sock',
      'ENAMETOOLONG',
    );
}

/** Anyone who can write the folder can swap the socket for their own and hear the commands. */
export async function warnIfFolderIsShared(dir: string, logger: Logger): Promise<void> {
  const st = await stat(dir).catch(() => undefined);
  if (!st) return;
  if ((st.mode & 0o022) !== 0 && (st.mode & 0o1000) === 0)
    logger.warn('the control socket folder is writable by other users', {
      folder: dir,
      hint: `chmod go-w ${dir}, or set control.socket to a folder only this user can write`,
    });
}

export async function bindPrivately(
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
