/**
 * What src/core/smtp/smtp-server-overrides.ts relies on in smtp-server, checked on the
 * version package.json pins. The overrides subclass private methods and match the
 * library's English reply texts; an upgrade that keeps the method names but changes what
 * they do would pass the start-up check (assertInternals) and still break the gateway:
 * DATA parsed the old way, a fixed enhanced code that no longer matches, AUTH offered in
 * clear. Each test here drives the stock library (no override in the way) through one of
 * those paths and asserts its exact bytes or effect, then the gateway's server through
 * the same path. When one fails after an upgrade, read the override it names before
 * changing the expected value.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';
import { scannerOf, GatewaySmtpServer } from '../../src/core/smtp/smtp-server-overrides.js';
import { LOOPBACK, testTls, type TestTls } from '../support/index.js';
import { SmtpDialog } from './smtp-wire.js';

const PLAIN = (user: string, pass: string): string =>
  Buffer.from(`\0${user}\0${pass}`).toString('base64');

/** A function's source without comments and with whitespace collapsed. */
function shape(f: unknown): string {
  return String(f)
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/\/\/[^\n]*/g, '')
    .replace(/\s+/g, ' ')
    .trim();
}

interface Running {
  server: SMTPServer;
  port: number;
  /** DATA bodies as onData received them */
  messages: Buffer[];
  /** the scanner's counters per message (gateway server only) */
  scanned: Array<{ bytes: number } | undefined>;
  connects: number;
  close(): Promise<void>;
}

type Make = (options: SMTPServerOptions) => SMTPServer;

const stock: Make = (o) => new SMTPServer(o);
const gateway =
  (authWithoutTls: boolean, greetAtOnce = false): Make =>
  (o) =>
    new GatewaySmtpServer(o, {
      authWithoutTls: () => authWithoutTls,
      greetAtOnce,
      maxJunkCommands: Infinity,
      maxErrors: Infinity,
      cutOff: () => undefined,
    });

async function start(make: Make, extra: Partial<SMTPServerOptions> = {}): Promise<Running> {
  const messages: Buffer[] = [];
  const scanned: Running['scanned'] = [];
  let connects = 0;
  const server = make({
    name: 'mx.test',
    logger: false,
    hideENHANCEDSTATUSCODES: false,
    authMethods: ['PLAIN'],
    disabledCommands: ['STARTTLS'],
    onConnect(_session, cb) {
      connects++;
      cb();
    },
    onAuth(auth, _session, cb) {
      if (auth.password === 'right') cb(null, { user: auth.username });
      else cb(new Error('Invalid username or password'));
    },
    onData(stream, _session, cb) {
      const parts: Buffer[] = [];
      stream.on('data', (c: Buffer) => parts.push(c));
      stream.on('end', () => {
        messages.push(Buffer.concat(parts));
        const s = scannerOf(stream);
        scanned.push(s ? { bytes: s.bytes } : undefined);
        cb();
      });
    },
    ...extra,
  });
  await new Promise<void>((resolve) => server.listen(0, LOOPBACK, resolve));
  const port = (server.server.address() as AddressInfo).port;
  return {
    server,
    port,
    messages,
    scanned,
    get connects() {
      return connects;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function dialog(r: Running): Promise<SmtpDialog> {
  const d = await SmtpDialog.open(r.port);
  assert.match(await d.reply(), /^220 mx\.test /);
  return d;
}

describe('smtp-server: the pinned version', () => {
  it('is the one package.json pins, exactly', () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as {
      dependencies: Record<string, string>;
    };
    const installed = JSON.parse(readFileSync('node_modules/smtp-server/package.json', 'utf8')) as {
      version: string;
    };
    assert.equal(pkg.dependencies['smtp-server'], '3.21.6', 'an exact version, no range');
    assert.equal(installed.version, pkg.dependencies['smtp-server']);
  });

  // GatewaySmtpServer.connect and GatewayConnection._createParser are copies of these two
  // with one class swapped; a change to the originals must be carried into the copies.
  it('SMTPServer.connect is the body GatewaySmtpServer.connect copies', () => {
    assert.equal(
      shape(SMTPServer.prototype.connect),
      "connect(socket, socketOptions) { let connection = new SMTPConnection(this, socket, socketOptions); this.connections.add(connection); connection.on('error', err => this._onError(err)); connection.on('connect', data => this._onClientConnect(data)); connection.init(); }",
    );
  });

  it('SMTPConnection.init is the body GatewayConnection.init copies, less its timer', () => {
    assert.equal(
      shape(SMTPConnection.prototype.init),
      "init() { this._setListeners(() => { if (this._server.options.maxClients && this._server.connections.size > this._server.options.maxClients) { return this.send(421, this.name + ' Too many connected clients, try again in a moment', false); } let readyTimer = setTimeout(() => this.connectionReady(), 100); readyTimer.unref(); }); }",
    );
  });

  it('SMTPConnection._createParser is the body GatewayConnection._createParser copies', () => {
    assert.equal(
      shape(Reflect.get(SMTPConnection.prototype, '_createParser')),
      "_createParser() { let parser = new SMTPStream({ maxCommandLength: this._server.options.maxCommandLength }); parser.oncommand = (command, callback) => this._onCommand(command, callback); parser.on('error', err => { this.send(421, 'Error: ' + err.message); }); return parser; }",
    );
  });
});

describe('smtp-server: the greeting', () => {
  /** ms from connect to the greeting's first byte, the median of `n` */
  async function greetingMs(r: Running, n = 5): Promise<number> {
    const times: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      const d = await dialog(r);
      times.push(performance.now() - t0);
      d.close();
    }
    return times.sort((a, b) => a - b)[Math.floor(n / 2)]!;
  }

  it('waits 100 ms for early talkers on its own and as the MX gateway; greets at once for submission', async () => {
    const stock = await start((o) => new SMTPServer(o));
    const mx = await start(gateway(false));
    const submission = await start(gateway(false, true));
    try {
      assert.ok((await greetingMs(stock)) >= 95, 'smtp-server waits');
      assert.ok((await greetingMs(mx)) >= 95, 'port 25 keeps the wait');
      const at = await greetingMs(submission);
      assert.ok(at < 50, `submission greeted after ${at.toFixed(1)} ms`);
    } finally {
      await Promise.all([stock.close(), mx.close(), submission.close()]);
    }
  });

  it('greeting at once still refuses a client beyond maxClients with 421', async () => {
    const r = await start(gateway(false, true), { maxClients: 1 });
    const first = await dialog(r);
    try {
      const second = await SmtpDialog.open(r.port);
      assert.match(await second.reply(), /^421 .*Too many connected clients/);
      second.close();
    } finally {
      first.close();
      await r.close();
    }
  });
});

describe('smtp-server: SMTPStream data mode (ScanningParser)', () => {
  /** a parser in command mode that records commands and can be switched to DATA */
  function parser(): { p: SMTPStream; commands: string[]; fed: number[] } {
    const commands: string[] = [];
    const fed: number[] = [];
    class Recording extends SMTPStream {
      override _feedDataStream(chunk: Buffer, done: (err?: Error | null) => void): void {
        fed.push(chunk.length);
        super._feedDataStream(chunk, done);
      }
    }
    const p = new Recording({});
    p.oncommand = (command, cb) => {
      commands.push(command.toString());
      cb?.();
    };
    return { p, commands, fed };
  }

  const write = (p: SMTPStream, data: string): Promise<void> =>
    new Promise((resolve, reject) =>
      p.write(Buffer.from(data), (e) => (e ? reject(e) : resolve())),
    );

  it('startDataMode returns a fresh stream with byteLength 0 and keeps it as _dataStream', () => {
    const { p } = parser();
    const s = p.startDataMode(10);
    assert.equal(s.byteLength, 0);
    assert.equal(s.sizeExceeded, false);
    assert.equal(p._dataStream, s);
  });

  it('hands every DATA chunk to _feedDataStream and nothing in command mode', async () => {
    const { p, commands, fed } = parser();
    await write(p, 'NOOP\r\n');
    assert.deepEqual(fed, []);
    p.startDataMode();
    await write(p, 'Subject: a\r\n');
    await write(p, '\r\nbody\r\n');
    assert.deepEqual(fed, [12, 8]);
    assert.deepEqual(commands, ['NOOP']);
  });

  it('_countDataBytes keeps byteLength and sizeExceeded of the stream current', () => {
    const { p } = parser();
    const s = p.startDataMode(10);
    p._countDataBytes(6);
    assert.deepEqual([s.byteLength, s.sizeExceeded], [6, false]);
    p._countDataBytes(6);
    assert.deepEqual([s.byteLength, s.sizeExceeded], [12, true]);
  });

  it('_endDataMode ends the stream with the last chunk, leaves data mode, and parses the rest as commands after continue()', async () => {
    const { p, commands } = parser();
    const s = p.startDataMode();
    const body: Buffer[] = [];
    s.on('data', (c: Buffer) => body.push(c));
    const ended = new Promise<void>((resolve) => s.on('end', () => resolve()));
    let resumed = false;
    p._endDataMode(Buffer.from('last\r\n'), Buffer.from('RSET\r\nQUIT\r\n'), () => {
      resumed = true;
    });
    await ended;
    assert.equal(Buffer.concat(body).toString(), 'last\r\n');
    assert.equal(p._dataStream, null);
    assert.deepEqual(commands, [], 'nothing is parsed before continue()');
    p.continue();
    assert.deepEqual(commands, ['RSET', 'QUIT']);
    assert.equal(resumed, true);
  });
});

describe('smtp-server: replies the overrides rewrite', () => {
  let tls: TestTls;
  before(async () => {
    tls = await testTls();
  });

  /** The same dialog against the stock server and the gateway's. */
  async function both(
    extra: Partial<SMTPServerOptions>,
    talk: (d: SmtpDialog, r: Running) => Promise<string>,
  ): Promise<{ stock: string; gateway: string }> {
    const out = { stock: '', gateway: '' };
    for (const [name, make] of [
      ['stock', stock],
      ['gateway', gateway(true)],
    ] as const) {
      const r = await start(make, extra);
      try {
        const d = await dialog(r);
        try {
          out[name] = await talk(d, r);
        } finally {
          d.close();
        }
      } finally {
        await r.close();
      }
    }
    return out;
  }

  // carriesEnhancedCode: the library puts its guessed code before any text, also before
  // a text that carries its own, so the gateway sends such texts with context false.
  it('a reply text with its own enhanced code', async () => {
    const r = await both(
      {
        authOptional: true,
        onRcptTo(_a, _s, cb) {
          const err = Object.assign(new Error('5.1.1 no such user here'), { responseCode: 550 });
          cb(err);
        },
      },
      async (d) => {
        await d.cmd('EHLO c.test');
        await d.cmd('MAIL FROM:<a@c.test>');
        return d.cmd('RCPT TO:<b@mx.test>');
      },
    );
    assert.equal(r.stock, '550 5.1.1 5.1.1 no such user here');
    assert.equal(r.gateway, '550 5.1.1 no such user here');
  });

  it('VRFY (FIXES: 252)', async () => {
    const r = await both({}, async (d) => d.cmd('VRFY someone'));
    assert.equal(r.stock, '252 2.1.5 Try to send something. No promises though');
    assert.equal(r.gateway, '252 2.0.0 Try to send something. No promises though');
  });

  it('AUTH PLAIN with a response that is not three fields (FIXES: invalid userdata)', async () => {
    const r = await both({}, async (d) => {
      await d.cmd('EHLO c.test');
      return d.cmd(`AUTH PLAIN ${Buffer.from('only-one-field').toString('base64')}`);
    });
    assert.equal(r.stock, '501 5.5.4 Error: invalid userdata');
    assert.equal(r.gateway, '501 5.5.2 Error: invalid userdata');
  });

  it('AUTH cancelled with "*" (FIXES: Authentication aborted)', async () => {
    const r = await both({}, async (d) => {
      await d.cmd('EHLO c.test');
      assert.equal(await d.cmd('AUTH PLAIN'), '334 ');
      return d.cmd('*');
    });
    assert.equal(r.stock, '501 5.5.4 Authentication aborted');
    assert.equal(r.gateway, '501 5.7.0 Authentication aborted');
  });

  it('ten unknown commands (FIXES: too many unrecognized commands)', async () => {
    const r = await both({ authOptional: true }, async (d) => {
      for (let i = 0; i < 9; i++)
        assert.equal(await d.cmd('BOGUS'), '500 5.5.2 Error: command not recognized');
      return d.cmd('BOGUS');
    });
    assert.equal(r.stock, '421 4.4.2 Error: too many unrecognized commands');
    assert.equal(r.gateway, '421 4.7.0 Error: too many unrecognized commands');
  });

  it('commands without AUTH over the limit (FIXES: too many unauthenticated commands)', async () => {
    const r = await both({ maxAllowedUnauthenticatedCommands: 2 }, async (d) => {
      assert.match(await d.cmd('NOOP'), /^250 /);
      return d.cmd('NOOP');
    });
    assert.equal(r.stock, '421 4.4.2 Error: too many unauthenticated commands');
    assert.equal(r.gateway, '421 4.7.0 Error: too many unauthenticated commands');
  });

  it('a command while the server closes (FIXES: Server shutting down)', async () => {
    const r = await both({ authOptional: true, closeTimeout: 2_000 }, async (d, run) => {
      run.server.close();
      return d.cmd('NOOP');
    });
    assert.equal(r.stock, '421 4.4.2 Server shutting down');
    assert.equal(r.gateway, '421 4.3.2 Server shutting down');
  });

  // GatewayConnection.send drops AUTH from the EHLO reply, which the library sends as an
  // array with context false (no enhanced code on any line).
  it('the EHLO reply: an array sent without enhanced codes, AUTH on a line of its own', async () => {
    const seen: Array<{ code: number; array: boolean; context: unknown }> = [];
    const original = Reflect.get(SMTPConnection.prototype, 'send') as (
      this: SMTPConnection,
      ...a: unknown[]
    ) => void;
    const r = await start(stock);
    try {
      SMTPConnection.prototype.send = function (this: SMTPConnection, ...a: unknown[]) {
        seen.push({ code: a[0] as number, array: Array.isArray(a[1]), context: a[2] });
        original.apply(this, a);
      } as SMTPConnection['send'];
      const d = await dialog(r);
      const ehlo = await d.cmd('EHLO c.test');
      d.close();
      assert.match(ehlo, /^250-mx\.test Nice to meet you, /);
      assert.deepEqual(ehlo.split('\r\n').slice(1), [
        '250-PIPELINING',
        '250-8BITMIME',
        '250-SMTPUTF8',
        '250-ENHANCEDSTATUSCODES',
        '250 AUTH PLAIN',
      ]);
      assert.deepEqual(seen.at(-1), { code: 250, array: true, context: false });
    } finally {
      SMTPConnection.prototype.send = original as SMTPConnection['send'];
      await r.close();
    }
  });

  it('the gateway offers AUTH in clear only where its policy allows', async () => {
    for (const allow of [true, false]) {
      const r = await start(gateway(allow));
      try {
        const d = await dialog(r);
        const ehlo = await d.cmd('EHLO c.test');
        d.close();
        assert.equal(/^250[- ]AUTH PLAIN$/m.test(ehlo.replace(/\r/g, '')), allow);
      } finally {
        await r.close();
      }
    }
  });

  // handler_AUTH: the gateway sets allowInsecureAuth and gates AUTH itself; the library's
  // own gate (538) must stay out of the way when that option is set, and say 538 when not.
  it('AUTH before STARTTLS: the library gate follows allowInsecureAuth; the gateway says 530', async () => {
    const tlsOptions = {
      disabledCommands: [],
      key: readFileSync(tls.keyFile),
      cert: readFileSync(tls.certFile),
    };
    const ask = async (make: Make, extra: Partial<SMTPServerOptions>): Promise<string> => {
      const r = await start(make, { ...tlsOptions, ...extra });
      try {
        const d = await dialog(r);
        await d.cmd('EHLO c.test');
        const reply = await d.cmd('AUTH PLAIN');
        d.close();
        return reply;
      } finally {
        await r.close();
      }
    };
    assert.equal(
      await ask(stock, { allowInsecureAuth: false }),
      '538 5.7.0 Error: Must issue a STARTTLS command first',
    );
    assert.equal(await ask(stock, { allowInsecureAuth: true }), '334 ');
    assert.equal(await ask(gateway(true), {}), '334 ');
    assert.equal(await ask(gateway(false), {}), '530 5.7.0 Must issue a STARTTLS command first');
  });
});

describe('smtp-server: a whole session through the overridden paths', () => {
  let tls: TestTls;
  before(async () => {
    tls = await testTls();
  });
  const running: Running[] = [];
  after(async () => {
    await Promise.all(running.map((r) => r.close()));
  });

  // connect -> _onClientConnect (onConnect), _createParser (also after STARTTLS, which
  // retires the plaintext parser), _onCommand, _feedDataStream/_endDataMode, send.
  it('the gateway server: onConnect, STARTTLS, AUTH, DATA with dot-stuffing kept, pipelined RSET', async () => {
    const created: number[] = [];
    const original = Reflect.get(SMTPConnection.prototype, '_createParser') as () => SMTPStream;
    const r = await start(gateway(false), {
      disabledCommands: [],
      key: readFileSync(tls.keyFile),
      cert: readFileSync(tls.certFile),
    });
    running.push(r);
    const d = await dialog(r);
    assert.equal(r.connects, 1);
    assert.equal(r.server.connections.size, 1);
    // the gateway's connection builds its parser itself (no call to the original)
    SMTPConnection.prototype._createParser = function (this: SMTPConnection) {
      created.push(1);
      return original.call(this);
    } as SMTPConnection['_createParser'];
    try {
      assert.match(await d.cmd('EHLO c.test'), /250[- ]STARTTLS/);
      assert.equal(await d.cmd('STARTTLS'), '220 2.0.0 Ready to start TLS');
      await d.startTls();
      assert.match(await d.cmd('EHLO c.test'), /^250 AUTH PLAIN$/m);
      assert.equal(
        await d.cmd(`AUTH PLAIN ${PLAIN('u@mx.test', 'right')}`),
        '235 2.7.0 Authentication successful',
      );
      assert.equal(await d.cmd('MAIL FROM:<u@mx.test>'), '250 2.1.0 Accepted');
      assert.equal(await d.cmd('RCPT TO:<b@mx.test>'), '250 2.1.5 Accepted');
      assert.equal(await d.cmd('DATA'), '354 End data with <CR><LF>.<CR><LF>');
      // the terminator and a pipelined command in one write
      d.write('Subject: x\r\n\r\n..leading dot\r\nlast\r\n.\r\nRSET\r\n');
      assert.equal(await d.reply(), '250 2.6.0 OK: message queued');
      assert.equal(await d.reply(), '250 2.0.0 Flushed');
      assert.equal(r.messages.at(-1)?.toString(), 'Subject: x\r\n\r\n..leading dot\r\nlast\r\n');
      assert.deepEqual(r.scanned.at(-1), {
        bytes: 'Subject: x\r\n\r\n.leading dot\r\nlast\r\n'.length,
      });
      assert.deepEqual(created, [], 'both parsers came from GatewayConnection._createParser');
    } finally {
      SMTPConnection.prototype._createParser = original as SMTPConnection['_createParser'];
      d.close();
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(r.server.connections.size, 0, 'the connection left the server on close');
  });

  it('the stock server unstuffs the same message (what ScanningParser replaces)', async () => {
    const r = await start(stock, { authOptional: true });
    running.push(r);
    const d = await dialog(r);
    await d.cmd('EHLO c.test');
    await d.cmd('MAIL FROM:<u@mx.test>');
    await d.cmd('RCPT TO:<b@mx.test>');
    await d.cmd('DATA');
    d.write('Subject: x\r\n\r\n..leading dot\r\nlast\r\n.\r\n');
    assert.equal(await d.reply(), '250 2.6.0 OK: message queued');
    d.close();
    assert.equal(r.messages.at(-1)?.toString(), 'Subject: x\r\n\r\n.leading dot\r\nlast\r\n');
    assert.deepEqual(r.scanned.at(-1), undefined);
  });
});
