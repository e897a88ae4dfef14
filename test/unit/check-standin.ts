/**
 * Small scripted stand-in servers for the check probes: loopback listeners on port 0 that
 * play a scripted IMAP, POP3 or SMTP dialogue and can inject the faults a real server will
 * not produce on demand (bad greetings, missing STARTTLS, bytes behind a STARTTLS reply,
 * PREAUTH, silence, bad certificates). Not a test file itself.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSecureContext, TLSSocket } from 'node:tls';
import type { EvalContext } from '../../src/core/check/meanings.js';
import type { Probe } from '../../src/core/check/probe.js';
import type { ProbeOptions } from '../../src/core/check/session.js';
import type { EndpointReport } from '../../src/core/check/types.js';
import { parseEndpoint } from '../../src/core/config/endpoint.js';
import { testTls, type TestTls } from '../support/tls.js';

export interface Certs {
  tls: TestTls;
  /** the test CA's server certificate for 127.0.0.1 / localhost */
  cert: string;
  key: string;
  /** a self-signed server certificate for 127.0.0.1 */
  selfSigned: { cert: string; key: string };
}

let loaded: Certs | undefined;
let selfSignedDir: string | undefined;

/** Call in before(): the test CA and a fresh self-signed certificate. */
export async function loadCerts(): Promise<Certs> {
  const tls = await testTls();
  selfSignedDir = mkdtempSync(join(tmpdir(), 'ap-selfsigned-'));
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-sha256',
      '-days',
      '2',
      '-subj',
      '/CN=self.test',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      'key.pem',
      '-out',
      'cert.pem',
    ],
    { cwd: selfSignedDir, stdio: 'ignore' },
  );
  loaded = {
    tls,
    cert: readFileSync(tls.certFile, 'utf8'),
    key: readFileSync(tls.keyFile, 'utf8'),
    selfSigned: {
      cert: readFileSync(join(selfSignedDir, 'cert.pem'), 'utf8'),
      key: readFileSync(join(selfSignedDir, 'key.pem'), 'utf8'),
    },
  };
  return loaded;
}

function certs(): Certs {
  if (!loaded) throw new Error('call loadCerts() in before() first');
  return loaded;
}

/** One accepted connection of a stand-in server, with a line reader that survives STARTTLS. */
export class Conn {
  private buf = '';
  private waiting?: () => void;
  private closed = false;
  /** TLS is on (implicit, or after STARTTLS) */
  secure = false;

  constructor(
    public socket: Socket,
    private readonly log: string[],
  ) {
    this.attach(socket);
  }

  private attach(s: Socket): void {
    s.on('data', (d: Buffer) => {
      this.buf += d.toString('latin1');
      this.waiting?.();
    });
    s.on('close', () => {
      this.closed = true;
      this.waiting?.();
    });
    s.on('error', () => undefined);
  }

  send(text: string): void {
    this.socket.write(text);
  }

  /** The next line from the client, or undefined when it hung up. */
  async line(): Promise<string | undefined> {
    for (;;) {
      const i = this.buf.indexOf('\r\n');
      if (i >= 0) {
        const line = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 2);
        this.log.push(line);
        return line;
      }
      if (this.closed) return undefined;
      await new Promise<void>((r) => (this.waiting = r));
    }
  }

  startTls(cert: string, key: string): void {
    const plain = this.socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    const secure = new TLSSocket(plain, {
      isServer: true,
      secureContext: createSecureContext({ cert, key }),
    });
    this.socket = secure;
    this.secure = true;
    this.attach(secure);
  }
}

export interface StandIn {
  port: number;
  /** every line the probe sent, over all connections */
  received: string[];
  close(): Promise<void>;
}

const servers: Server[] = [];

export async function standIn(
  script: (c: Conn) => Promise<void>,
  tls?: { cert: string; key: string },
): Promise<StandIn> {
  const received: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    const conn = new Conn(socket, received);
    if (tls) conn.startTls(tls.cert, tls.key);
    script(conn).catch(() => undefined);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    received,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** Call in after(): close every stand-in and remove the self-signed certificate. */
export async function closeStandIns(): Promise<void> {
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
  if (selfSignedDir) rmSync(selfSignedDir, { recursive: true, force: true });
  selfSignedDir = undefined;
}

export const FAST: ProbeOptions['timeouts'] = {
  connectMs: 2000,
  greetingMs: 2000,
  commandMs: 2000,
};

export function ctx(over: Partial<EvalContext> = {}): EvalContext {
  return {
    side: 'source',
    submission: false,
    lmtp: false,
    copiesOverPop3: false,
    startTls: false,
    ...over,
  };
}

export async function probe(
  p: Probe,
  url: string,
  opts: Partial<ProbeOptions> = {},
  c: Partial<EvalContext> = {},
): Promise<EndpointReport> {
  const endpoint = parseEndpoint(url);
  return p(
    { role: 'source.x', endpoint, ctx: ctx({ startTls: endpoint.tls === 'starttls', ...c }) },
    { timeouts: FAST, ca: certs().tls.ca, ...opts },
  );
}

export function cap(
  r: EndpointReport,
  name: string,
): { present: boolean | null; level: string; value?: string } | undefined {
  return r.capabilities.find((c) => c.name === name);
}

/** An IMAP stand-in: greeting, CAPABILITY before/after TLS, STARTTLS, LOGOUT. */
export function imapServer(o: {
  greeting?: string;
  pre?: string;
  post?: string;
  startTlsReply?: (tag: string) => string;
  onLine?: (c: Conn, line: string) => boolean;
}): (c: Conn) => Promise<void> {
  return async (c) => {
    c.send(`${o.greeting ?? '* OK stand-in ready'}\r\n`);
    for (;;) {
      const line = await c.line();
      if (line === undefined) return;
      if (o.onLine?.(c, line)) continue;
      const [tag, verb] = line.split(' ');
      if (verb === 'CAPABILITY') {
        c.send(
          `* CAPABILITY ${c.secure ? (o.post ?? 'IMAP4rev1 AUTH=PLAIN') : (o.pre ?? 'IMAP4rev1 STARTTLS LOGINDISABLED')}\r\n${tag} OK done\r\n`,
        );
      } else if (verb === 'STARTTLS') {
        c.send(o.startTlsReply?.(tag ?? '') ?? `${tag} OK Begin TLS\r\n`);
        c.startTls(certs().cert, certs().key);
      } else if (verb === 'LOGOUT') {
        c.send(`* BYE bye\r\n${tag} OK done\r\n`);
        c.socket.end();
        return;
      } else {
        c.send(`${tag} BAD unknown\r\n`);
      }
    }
  };
}

/** A POP3 stand-in. */
export function pop3Server(o: {
  greeting?: string;
  capa?: string[] | null;
  stlsReply?: string;
}): (c: Conn) => Promise<void> {
  return async (c) => {
    c.send(`${o.greeting ?? '+OK POP3 stand-in'}\r\n`);
    for (;;) {
      const line = await c.line();
      if (line === undefined) return;
      if (line === 'CAPA') {
        if (o.capa === null) c.send('-ERR unknown command\r\n');
        else
          c.send(
            `+OK\r\n${(o.capa ?? ['UIDL', 'TOP', 'USER', 'SASL PLAIN', 'STLS']).join('\r\n')}\r\n.\r\n`,
          );
      } else if (line === 'STLS') {
        c.send(o.stlsReply ?? '+OK Begin TLS\r\n');
        c.startTls(certs().cert, certs().key);
      } else if (line === 'QUIT') {
        c.send('+OK bye\r\n');
        c.socket.end();
        return;
      } else c.send('-ERR what\r\n');
    }
  };
}

/** An SMTP/LMTP stand-in. */
export function smtpServer(o: {
  greeting?: string;
  ext?: string[];
  starttlsReply?: string;
  ehlo?: string;
}): (c: Conn) => Promise<void> {
  return async (c) => {
    c.send(o.greeting ?? '220-stand-in ESMTP\r\n220 second line\r\n');
    for (;;) {
      const line = await c.line();
      if (line === undefined) return;
      const verb = line.split(' ')[0]?.toUpperCase();
      if (verb === 'EHLO' || verb === 'LHLO') {
        if (o.ehlo) c.send(o.ehlo);
        else {
          const ext = o.ext ?? [
            'SIZE 1000',
            '8BITMIME',
            'PIPELINING',
            'STARTTLS',
            'AUTH PLAIN LOGIN',
          ];
          c.send(
            ['stand-in', ...ext]
              .map((e, i, all) => `250${i === all.length - 1 ? ' ' : '-'}${e}\r\n`)
              .join(''),
          );
        }
      } else if (verb === 'HELO') c.send('250 hello\r\n');
      else if (verb === 'STARTTLS') {
        c.send(o.starttlsReply ?? '220 go ahead\r\n');
        c.startTls(certs().cert, certs().key);
      } else if (verb === 'QUIT') {
        c.send('221 bye\r\n');
        c.socket.end();
        return;
      } else c.send('502 no\r\n');
    }
  };
}
