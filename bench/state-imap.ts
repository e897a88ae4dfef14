/**
 * The IMAP ends of bench:state's gateway login storm, both in this process:
 *
 * - a stand-in source that accepts any LOGIN at once (what the gateway's backend login
 *   sends: ID, LOGIN, the confirming LIST "" "", LOGOUT) and refuses the rest, so a
 *   login's time is the gateway's own:
 *   the state lookup, the capture made durable in the store, the splice;
 * - clients that log in through the gateway, CONCURRENCY at a time, each on a new
 *   connection with a password the account does not hold, so every login is a capture.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { CONCURRENCY } from './state-records.js';

/** Lines from a socket, one at a time. */
function lineReader(sock: Socket): () => Promise<string> {
  let buf = '';
  const lines: string[] = [];
  let wake: (() => void) | undefined;
  let ended = false;
  sock.setEncoding('latin1');
  sock.on('data', (s: string) => {
    buf += s;
    let nl: number;
    while ((nl = buf.indexOf('\r\n')) >= 0) {
      lines.push(buf.slice(0, nl));
      buf = buf.slice(nl + 2);
    }
    wake?.();
  });
  const end = (): void => {
    ended = true;
    wake?.();
  };
  sock.on('close', end);
  sock.on('error', end);
  return async () => {
    while (lines.length === 0) {
      if (ended) throw new Error('connection closed');
      await new Promise<void>((r) => (wake = r));
      wake = undefined;
    }
    return lines.shift() as string;
  };
}

/**
 * Enough for a login (the gateway's backend login ends with LIST "" ""); anything a
 * transfer asks beyond that is refused, so a worker that picks an account fails at once
 * instead of waiting on a source that has no mail to give.
 */
function answer(sock: Socket, line: string): void {
  const [tag = '*', cmd = '', ...rest] = line.split(' ');
  const args = rest.join(' ');
  switch (cmd.toUpperCase()) {
    case 'CAPABILITY':
      sock.write(`* CAPABILITY IMAP4rev1 ID\r\n${tag} OK done\r\n`);
      return;
    case 'ID':
      sock.write(`* ID NIL\r\n${tag} OK done\r\n`);
      return;
    case 'LOGIN':
    case 'NOOP':
      sock.write(`${tag} OK done\r\n`);
      return;
    case 'LIST':
      if (args === '"" ""') sock.write(`* LIST (\\Noselect) "/" ""\r\n${tag} OK done\r\n`);
      else sock.write(`${tag} NO [UNAVAILABLE] stand-in source: no mailboxes\r\n`);
      return;
    case 'LOGOUT':
      sock.end(`* BYE bye\r\n${tag} OK done\r\n`);
      return;
    default:
      sock.write(`${tag} NO [UNAVAILABLE] stand-in source: logins only\r\n`);
  }
}

/**
 * Commands from a client's bytes, literals ({n} then n bytes, RFC 3501 4.3) included: a
 * password that is no quotable string comes as one. Latin-1, so a char is a byte.
 */
function commands(onCommand: (line: string) => void, onLiteral: () => void) {
  let buf = '';
  let command = '';
  let literal = 0;
  return (s: string): void => {
    buf += s;
    for (;;) {
      if (literal > 0) {
        if (buf.length < literal) return;
        command += buf.slice(0, literal);
        buf = buf.slice(literal);
        literal = 0;
      }
      const nl = buf.indexOf('\r\n');
      if (nl < 0) return;
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 2);
      const m = /\{(\d+)(\+?)\}$/.exec(line);
      if (m) {
        command += line.slice(0, m.index);
        literal = Number(m[1]);
        if (m[2] !== '+') onLiteral();
        continue;
      }
      onCommand(command + line);
      command = '';
    }
  };
}

/** The stand-in source on a free loopback port. */
export async function startStubSource(): Promise<{ port: number; close(): Promise<void> }> {
  const open = new Set<Socket>();
  const server: Server = createServer((sock) => {
    open.add(sock);
    sock.on('close', () => open.delete(sock));
    sock.on('error', () => undefined);
    sock.write('* OK [CAPABILITY IMAP4rev1 ID] stand-in source ready\r\n');
    sock.setEncoding('latin1');
    sock.on(
      'data',
      commands(
        (line) => answer(sock, line),
        () => sock.write('+ go on\r\n'),
      ),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        for (const sock of open) sock.destroy();
      }),
  };
}

/** One login through the gateway: ms from LOGIN sent to its tagged answer. */
async function loginOnce(port: number, user: string, password: string): Promise<number> {
  const sock = connect(port, '127.0.0.1');
  const next = lineReader(sock);
  try {
    const greeting = await next();
    if (!greeting.startsWith('* OK')) throw new Error(`greeting: ${greeting}`);
    const t0 = performance.now();
    sock.write(`a1 LOGIN "${user}" "${password}"\r\n`);
    let line: string;
    do line = await next();
    while (!line.startsWith('a1 '));
    const ms = performance.now() - t0;
    if (!line.startsWith('a1 OK')) throw new Error(`LOGIN ${user}: ${line}`);
    sock.write('a2 LOGOUT\r\n');
    return ms;
  } finally {
    sock.destroy();
  }
}

/** `total` logins, CONCURRENCY at a time, over `addresses`; their latencies and how long. */
export async function loginStorm(
  port: number,
  addresses: string[],
  total: number,
): Promise<{ latencies: number[]; ms: number; failed: number; firstError?: string }> {
  const latencies: number[] = [];
  let next = 0;
  let failed = 0;
  let firstError: string | undefined;
  const t0 = performance.now();
  const worker = async (): Promise<void> => {
    while (next < total) {
      const i = next++;
      try {
        latencies.push(
          await loginOnce(port, addresses[i % addresses.length] as string, `storm-${i}-Q7!`),
        );
      } catch (err) {
        failed++;
        firstError ??= (err as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return { latencies, ms: performance.now() - t0, failed, ...(firstError ? { firstError } : {}) };
}
