/**
 * Free loopback ports for servers we cannot hand a listening socket to (Dovecot, Postfix),
 * and waiting until such a server answers.
 *
 * Ports are picked at random below the kernel's ephemeral range (32768+ on Linux): ports
 * taken from that range with listen(0) can be grabbed again by any outgoing connection
 * before the daemon binds them. A collision is still possible with another test process, so
 * starters retry on "address in use" (see isAddressInUse).
 */
import { connect, createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export const LOOPBACK = '127.0.0.1';

const LOW = 20000;
const HIGH = 32000;
const handedOut = new Set<number>();

function canBind(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** One port on `host` that nothing listens on now and this process has not handed out. */
export async function freePort(host = LOOPBACK): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW));
    if (handedOut.has(port)) continue;
    if (await canBind(port, host)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port found on ${host} between ${LOW} and ${HIGH}`);
}

/** `count` distinct free ports. */
export async function freePorts(count: number, host = LOOPBACK): Promise<number[]> {
  const out: number[] = [];
  while (out.length < count) out.push(await freePort(host));
  return out;
}

/** Forget ports of a stopped server so a later start may reuse them. */
export function releasePorts(ports: Iterable<number>): void {
  for (const p of ports) handedOut.delete(p);
}

/** True for a daemon log line or error that says a listener could not bind. */
export function isAddressInUse(text: string): boolean {
  return /address already in use|EADDRINUSE/i.test(text);
}

/**
 * Connect and read the first line the server sends (its greeting). Resolves with the line,
 * without CRLF; rejects on timeout or when the connection is refused or closed first.
 */
export function readGreeting(port: number, host = LOOPBACK, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect({ port, host });
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no greeting from ${host}:${port} within ${timeoutMs} ms`));
    }, timeoutMs);
    const done = (err: Error | null, line?: string): void => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(line ?? '');
    };
    sock.setEncoding('latin1');
    sock.on('data', (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl >= 0) done(null, buf.slice(0, nl).replace(/\r$/, ''));
    });
    sock.on('error', (err) => done(err));
    sock.on('close', () => done(new Error(`${host}:${port} closed before sending a greeting`)));
  });
}

/**
 * Poll until the server on `port` sends a greeting matching `expect`, or fail after
 * `timeoutMs` with the last error. `alive` lets the caller stop early when the daemon died.
 */
export async function waitForGreeting(
  port: number,
  expect: RegExp,
  opts: { host?: string; timeoutMs?: number; alive?: () => boolean } = {},
): Promise<string> {
  const host = opts.host ?? LOOPBACK;
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  let last: unknown;
  while (Date.now() < deadline) {
    if (opts.alive && !opts.alive())
      throw new Error(`server for ${host}:${port} exited during start-up`);
    try {
      const line = await readGreeting(port, host, Math.max(200, deadline - Date.now()));
      if (expect.test(line)) return line;
      last = new Error(`unexpected greeting from ${host}:${port}: ${line}`);
    } catch (err) {
      last = err;
    }
    await sleep(50);
  }
  throw new Error(
    `${host}:${port} did not greet in time: ${String((last as Error)?.message ?? last)}`,
  );
}
