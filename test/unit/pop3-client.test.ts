/**
 * The POP3 reader against scripted stand-in servers: replies cut into single bytes,
 * byte-stuffing, STLS injection, refused logins, overlong lines, drops and silence.
 * (The happy path against a real Dovecot is in test/integration/pop3-copy.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import {
  Pop3Client,
  Pop3Error,
  type Pop3ConnectOptions,
} from '../../src/core/transfer/pop3/pop3-client.js';

type Reply = string | Buffer | ((sock: net.Socket) => void | Promise<void>);
type Script = (command: string) => Reply | undefined;

/** A POP3 stand-in: greets, then answers each command line via `script`. Records the commands. */
async function standIn(
  script: Script,
  greeting = '+OK ready\r\n',
): Promise<{ port: number; commands: string[]; close: () => Promise<void> }> {
  const commands: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => undefined);
    sock.write(greeting);
    let buf = '';
    sock.on('data', async (d) => {
      buf += d.toString('latin1');
      let i: number;
      while ((i = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        commands.push(line);
        const r = script(line);
        if (r === undefined) continue;
        if (typeof r === 'function') await r(sock);
        else sock.write(r);
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    commands,
    close: async () => {
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

const opts = (port: number, extra: Partial<Pop3ConnectOptions> = {}): Pop3ConnectOptions => ({
  host: '127.0.0.1',
  port,
  tls: 'none',
  user: 'u@example.org',
  password: 'sekrit-pw',
  timeoutMs: 2000,
  ...extra,
});

const loginOk: Script = (c) =>
  c.startsWith('USER') || c.startsWith('PASS') ? '+OK\r\n' : undefined;

async function dribble(sock: net.Socket, data: Buffer): Promise<void> {
  for (const byte of data) {
    sock.write(Buffer.from([byte]));
    await new Promise((r) => setImmediate(r));
  }
}

test('RETR reply cut into single bytes: terminator found, byte-stuffing undone, 8-bit kept', async () => {
  const message = Buffer.concat([
    Buffer.from('Subject: t\r\n\r\n.dot\r\n.\r\n..\r\n', 'latin1'),
    Buffer.from([0xe4, 0x00, 0xff]),
    Buffer.from('\r\nend\r\n'),
  ]);
  const stuffed = Buffer.from(message.toString('latin1').replace(/^\./gm, '..'), 'latin1');
  const srv = await standIn((c) => {
    if (c === 'RETR 1')
      return (s) =>
        dribble(
          s,
          Buffer.concat([Buffer.from('+OK 99 octets\r\n'), stuffed, Buffer.from('.\r\n')]),
        );
    if (c === 'QUIT') return '+OK bye\r\n';
    return loginOk(c);
  });
  try {
    const pop = await Pop3Client.connect(opts(srv.port));
    const got = await pop.retr(1);
    await pop.quit();
    assert.ok(got.equals(message), `got ${JSON.stringify(got.toString('latin1'))}`);
    assert.deepEqual(srv.commands, ['USER u@example.org', 'PASS sekrit-pw', 'RETR 1', 'QUIT']);
  } finally {
    await srv.close();
  }
});

test('UIDL, LIST and STAT parse; nothing is ever deleted', async () => {
  const srv = await standIn((c) => {
    if (c === 'UIDL') return '+OK\r\n1 abc\r\n2 def.ghi\r\n.\r\n';
    if (c === 'LIST') return '+OK 2 messages\r\n1 120\r\n2 3400\r\n.\r\n';
    if (c === 'STAT') return '+OK 2 3520\r\n';
    if (c === 'QUIT') return '+OK\r\n';
    return loginOk(c);
  });
  try {
    const pop = await Pop3Client.connect(opts(srv.port));
    assert.deepEqual(
      [...(await pop.uidl())],
      [
        [1, 'abc'],
        [2, 'def.ghi'],
      ],
    );
    assert.deepEqual(
      [...(await pop.list())],
      [
        [1, 120],
        [2, 3400],
      ],
    );
    assert.deepEqual(await pop.stat(), { count: 2, size: 3520 });
    await pop.quit();
    assert.ok(!srv.commands.some((c) => c.startsWith('DELE')));
  } finally {
    await srv.close();
  }
});

test('a refused login is an authentication failure that does not carry the password', async () => {
  const srv = await standIn((c) =>
    c.startsWith('USER')
      ? '+OK\r\n'
      : c.startsWith('PASS')
        ? `-ERR [AUTH] bad password ${c}\r\n`
        : undefined,
  );
  try {
    await assert.rejects(Pop3Client.connect(opts(srv.port)), (err: unknown) => {
      assert.ok(err instanceof Pop3Error);
      assert.equal(err.authenticationFailed, true);
      assert.equal(err.responseCode, 'AUTH');
      assert.doesNotMatch(err.message, /sekrit/);
      return true;
    });
  } finally {
    await srv.close();
  }
  const temp = await standIn((c) =>
    c.startsWith('USER')
      ? '+OK\r\n'
      : c.startsWith('PASS')
        ? '-ERR [SYS/TEMP] try later\r\n'
        : undefined,
  );
  try {
    await assert.rejects(
      Pop3Client.connect(opts(temp.port)),
      (err: unknown) =>
        err instanceof Pop3Error && !err.authenticationFailed && /try later/.test(err.message),
    );
  } finally {
    await temp.close();
  }
});

test('USER refused: falls back to AUTH PLAIN (RFC 5034)', async () => {
  const token = Buffer.from('\0u@example.org\0sekrit-pw').toString('base64');
  const srv = await standIn((c) => {
    if (c.startsWith('USER')) return '-ERR USER disabled\r\n';
    if (c === `AUTH PLAIN ${token}`) return '+OK welcome\r\n';
    if (c === 'QUIT') return '+OK\r\n';
    return '-ERR what\r\n';
  });
  try {
    const pop = await Pop3Client.connect(opts(srv.port));
    await pop.quit();
    assert.deepEqual(srv.commands, ['USER u@example.org', `AUTH PLAIN ${token}`, 'QUIT']);
  } finally {
    await srv.close();
  }
});

test('bytes pipelined after the STLS reply are refused (command injection)', async () => {
  const srv = await standIn((c) =>
    c === 'STLS' ? '+OK Begin TLS\r\n+OK injected\r\n' : undefined,
  );
  try {
    await assert.rejects(
      Pop3Client.connect(opts(srv.port, { tls: 'starttls' })),
      /sent data after its STLS reply/,
    );
    assert.deepEqual(srv.commands, ['STLS']);
  } finally {
    await srv.close();
  }
});

test('hostile or broken servers end in a clear error, not a hang', async () => {
  const long = await standIn(() => undefined, `+OK ${'x'.repeat(10_000)}`);
  try {
    await assert.rejects(Pop3Client.connect(opts(long.port)), /overlong status line/);
  } finally {
    await long.close();
  }
  const drop = await standIn((c) =>
    c === 'RETR 1' ? (s) => void s.end('+OK\r\npartial line\r\nmore') : loginOk(c),
  );
  try {
    const pop = await Pop3Client.connect(opts(drop.port));
    await assert.rejects(pop.retr(1), /closed the connection/);
    pop.close();
  } finally {
    await drop.close();
  }
  const big = await standIn((c) =>
    c === 'RETR 1' ? `+OK\r\n${'y'.repeat(100)}\r\n${'z'.repeat(100)}\r\n.\r\n` : loginOk(c),
  );
  try {
    const pop = await Pop3Client.connect(opts(big.port, { maxMessageBytes: 150 }));
    await assert.rejects(pop.retr(1), /larger than the limit of 150 bytes/);
    pop.close();
  } finally {
    await big.close();
  }
  const silent = await standIn((c) => (c === 'RETR 1' ? undefined : loginOk(c)));
  try {
    const pop = await Pop3Client.connect(opts(silent.port, { timeoutMs: 200 }));
    await assert.rejects(pop.retr(1), /did not answer in time/);
    pop.close();
  } finally {
    await silent.close();
  }
  const notPop = await standIn(() => undefined, '* OK IMAP4rev1 ready\r\n');
  try {
    await assert.rejects(
      Pop3Client.connect(opts(notPop.port)),
      /POP3 server refused: \* OK IMAP4rev1/,
    );
  } finally {
    await notPop.close();
  }
});
