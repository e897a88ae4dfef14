/**
 * SMTP on the wire for the gateway tests: a raw dialog for transcripts (multi-line
 * replies, STARTTLS), and a scriptable stand-in backend for faults no real server
 * produces on demand.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { LOOPBACK, testTls } from '../support/index.js';

/** A raw SMTP conversation: reads whole replies (multi-line aware). */
export class SmtpDialog {
  private buf = '';
  private waiters: Array<() => void> = [];
  private closedFlag = false;

  private constructor(public sock: Socket | TLSSocket) {
    this.listen(sock);
  }

  private listen(sock: Socket | TLSSocket): void {
    sock.setEncoding('latin1');
    sock.on('data', (c: string) => {
      this.buf += c;
      this.wake();
    });
    sock.on('close', () => {
      this.closedFlag = true;
      this.wake();
    });
    sock.on('error', () => undefined);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  static async open(
    port: number,
    opts: { localAddress?: string; tls?: boolean } = {},
  ): Promise<SmtpDialog> {
    const plain = connect({ port, host: LOOPBACK, localAddress: opts.localAddress });
    const sock: Socket | TLSSocket = opts.tls
      ? tlsConnect({ socket: plain, ca: (await testTls()).ca, servername: 'localhost' })
      : plain;
    await new Promise<void>((resolve, reject) => {
      sock.once(opts.tls ? 'secureConnect' : 'connect', () => resolve());
      sock.once('error', reject);
    });
    return new SmtpDialog(sock);
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** The next complete reply ("250-a\r\n250 b" as one string), or '' when the server closed. */
  async reply(timeoutMs = 15_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = /^(?:\d{3}-[^\n]*\n)*\d{3}(?: [^\n]*)?\r?\n/.exec(this.buf);
      if (m) {
        this.buf = this.buf.slice(m[0].length);
        return m[0].replace(/\r?\n$/, '');
      }
      if (this.closedFlag) return '';
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`no SMTP reply within ${timeoutMs} ms; have ${JSON.stringify(this.buf)}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  write(data: string | Buffer): void {
    this.sock.write(data);
  }

  async cmd(line: string): Promise<string> {
    this.write(`${line}\r\n`);
    return this.reply();
  }

  /** Upgrade after a 220 to STARTTLS (the server's certificate is checked). */
  async startTls(): Promise<void> {
    const plain = this.sock;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    const secure = tlsConnect({ socket: plain, ca: (await testTls()).ca, servername: 'localhost' });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', () => resolve());
      secure.once('error', reject);
    });
    this.sock = secure;
    this.listen(secure);
  }

  close(): void {
    this.sock.destroy();
  }
}

/** A whole exchange on a fresh connection; returns every reply. */
export async function smtpTranscript(
  port: number,
  lines: Array<string | Buffer>,
  opts: { localAddress?: string } = {},
): Promise<string[]> {
  const d = await SmtpDialog.open(port, opts);
  try {
    const out = [await d.reply()];
    for (const l of lines) {
      if (typeof l === 'string') out.push(await d.cmd(l));
      else {
        d.write(l);
        out.push(await d.reply());
      }
    }
    return out;
  } finally {
    d.close();
  }
}

export interface StandInScript {
  /** what to do once the client sent the whole message */
  afterData: 'close' | 'hang' | 'accept' | 'reply-421';
  /** reply to RCPT (default 250); may be several lines */
  rcpt?: string;
  /** reply to the end of DATA under 'accept' (default "250 2.0.0 queued") */
  dataReply?: string;
  /** after accepting a message, say 421 and hang up when idle this long (Postfix's idle timeout) */
  idleCloseMs?: number;
}

/** A scriptable SMTP backend for faults no real server produces on demand. */
export async function startStandIn(script: StandInScript): Promise<{
  port: number;
  url: string;
  messages: Buffer[];
  connections(): number;
  stop(): Promise<void>;
}> {
  const messages: Buffer[] = [];
  const sockets = new Set<Socket>();
  let connections = 0;
  const server: Server = createServer((sock) => {
    connections++;
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    let inData = false;
    sock.write('220 standin.test ESMTP\r\n');
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        if (inData) {
          const end = buf.indexOf('\r\n.\r\n');
          if (end < 0) return;
          messages.push(buf.subarray(0, end + 2));
          buf = buf.subarray(end + 5);
          inData = false;
          if (script.afterData === 'close') return void sock.destroy();
          if (script.afterData === 'hang') return;
          sock.write(
            script.afterData === 'reply-421'
              ? '421 4.3.0 going down\r\n'
              : `${script.dataReply ?? '250 2.0.0 queued'}\r\n`,
          );
          if (script.idleCloseMs !== undefined) {
            setTimeout(
              () => sock.end('421 4.4.2 standin.test Error: timeout exceeded\r\n'),
              script.idleCloseMs,
            );
          }
          continue;
        }
        const nl = buf.indexOf('\r\n');
        if (nl < 0) return;
        const line = buf.subarray(0, nl).toString('latin1');
        buf = buf.subarray(nl + 2);
        const verb = line.split(' ')[0]!.toUpperCase();
        if (verb === 'EHLO' || verb === 'LHLO')
          sock.write('250-standin.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n');
        else if (verb === 'RCPT') sock.write(`${script.rcpt ?? '250 2.1.5 Ok'}\r\n`);
        else if (verb === 'DATA') {
          inData = true;
          sock.write('354 go ahead\r\n');
        } else if (verb === 'QUIT') {
          sock.end('221 bye\r\n');
          return;
        } else sock.write('250 Ok\r\n');
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, LOOPBACK, r));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    url: `smtp://${LOOPBACK}:${port}?tls=none`,
    messages,
    connections: () => connections,
    stop: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
