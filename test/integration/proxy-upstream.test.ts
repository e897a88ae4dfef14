/**
 * Backend hops: TLS to a real Dovecot (STARTTLS and implicit, verified, refused when the
 * certificate does not verify), the client's address forwarded with ID / XCLIENT, and
 * scripted stand-in servers for the faults a real server will not produce on demand:
 * PREAUTH, bytes injected after the STARTTLS reply, STARTTLS refused, a LOGIN accepted
 * but the next command refused, silence.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { parseEndpoint } from '../../src/core/config/endpoint.js';
import { imapLogin } from '../../src/core/imap/backend.js';
import { pop3Login } from '../../src/core/pop3/backend.js';
import { NetError } from '../../src/core/net/errors.js';
import type { ClientInfo } from '../../src/core/upstreams/types.js';
import { openBackend } from '../../src/core/smtp/smtp-client.js';
import { startDovecot, testTls, type DovecotInstance } from '../support/index.js';

const client: ClientInfo = {
  address: '192.0.2.7',
  port: 40000,
  localAddress: '127.0.0.1',
  localPort: 143,
  session: 'sess-1',
};
const timeouts = { connectMs: 2000, greetingMs: 500, commandMs: 1000 };

/** A stand-in server: `script` gets each line the gateway sends and the socket. */
async function standIn(
  greeting: string | null,
  script: (line: string, s: Socket) => void,
): Promise<{ port: number; seen: string[]; server: Server }> {
  const seen: string[] = [];
  const server = createServer((s) => {
    s.on('error', () => undefined);
    if (greeting !== null) s.write(greeting);
    let buf = '';
    s.setEncoding('latin1').on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        seen.push(line);
        script(line, s);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as { port: number }).port, seen, server };
}

/**
 * Write `line` every 50 ms, at most `max` times, until the socket closes: a server that
 * keeps talking without ever finishing its reply. `sent()` says how many went out.
 */
function trickle(s: Socket, line: string, max = 300): { sent(): number } {
  let n = 0;
  const t = setInterval(() => {
    if (++n > max || s.destroyed) return clearInterval(t);
    s.write(line);
  }, 50);
  s.on('close', () => clearInterval(t));
  return { sent: () => n };
}

function code(c: string) {
  // the transport's NetError, or its backend-refusal kind UpstreamError
  return (err: unknown) => err instanceof NetError && err.code === c;
}

describe('backend hops (upstreams)', { timeout: 60_000 }, () => {
  let dc: DovecotInstance;
  const servers: Server[] = [];
  before(async () => {
    dc = await startDovecot({
      name: 'up',
      users: [{ user: 'u@example.org', password: 'pw' }],
      tls: true,
      quirks: { trustedNetworks: '127.0.0.0/8', authFailureDelay: '0 secs' },
    });
  });
  after(async () => {
    for (const s of servers) s.close();
    await dc?.stop();
  });
  const track = <T extends { server: Server }>(x: T): T => (servers.push(x.server), x);

  it('STARTTLS and implicit TLS to a real Dovecot, verified against its CA', async () => {
    const ca = (await testTls()).ca;
    const opts = { label: 'source IMAP', timeouts, ca, forwardClient: true };
    const st = await imapLogin(
      parseEndpoint(`imap://127.0.0.1:${dc.ports.imap}?tls=starttls`),
      { user: 'u@example.org', password: 'pw' },
      client,
      opts,
    );
    assert.equal((st.socket as { encrypted?: boolean }).encrypted, true);
    assert.ok(st.capabilities?.includes('IMAP4rev1'));
    st.socket.destroy();
    const im = await imapLogin(
      parseEndpoint(`imaps://127.0.0.1:${dc.ports.imaps}`),
      { user: 'u@example.org', password: 'pw' },
      client,
      opts,
    );
    im.socket.destroy();
    const p = await pop3Login(
      parseEndpoint(`pop3://127.0.0.1:${dc.ports.pop3}?tls=starttls`),
      { user: 'u@example.org', password: 'pw' },
      client,
      { ...opts, label: 'source POP3' },
    );
    p.socket.destroy();
  });

  it('a certificate that does not verify is refused (never a silent downgrade)', async () => {
    const ep = parseEndpoint(`imaps://127.0.0.1:${dc.ports.imaps}`);
    await assert.rejects(
      imapLogin(ep, { user: 'u@example.org', password: 'pw' }, client, {
        label: 's',
        timeouts,
        forwardClient: false,
      }),
      code('ETLS'),
    );
    const unverified = parseEndpoint(`imaps://127.0.0.1:${dc.ports.imaps}?verify=false`);
    const ok = await imapLogin(unverified, { user: 'u@example.org', password: 'pw' }, client, {
      label: 's',
      timeouts,
      forwardClient: false,
    });
    ok.socket.destroy();
  });

  it('the client address reaches Dovecot (ID x-originating-ip, POP3 XCLIENT)', async () => {
    const s = await imapLogin(
      parseEndpoint(dc.urls.imap),
      { user: 'u@example.org', password: 'pw' },
      client,
      { label: 's', timeouts, forwardClient: true },
    );
    s.socket.destroy();
    const p = await pop3Login(
      parseEndpoint(dc.urls.pop3),
      { user: 'u@example.org', password: 'pw' },
      client,
      { label: 's', timeouts, forwardClient: true },
    );
    p.socket.destroy();
    const want = [
      /imap-login: Info: Login: user=<u@example\.org>.*rip=192\.0\.2\.7.*session=<sess-1>/,
      /pop3-login: Info: Login: user=<u@example\.org>.*rip=192\.0\.2\.7/,
    ];
    let log = '';
    for (let i = 0; i < 40 && !want.every((re) => re.test(log)); i++) {
      await new Promise((r) => setTimeout(r, 100));
      log = readFileSync(dc.logFile, 'utf8');
    }
    for (const re of want) assert.match(log, re);
  });

  it('wrong password and a refused post-login command are EAUTH', async () => {
    await assert.rejects(
      imapLogin(parseEndpoint(dc.urls.imap), { user: 'u@example.org', password: 'bad' }, client, {
        label: 's',
        timeouts,
        forwardClient: false,
      }),
      code('EAUTH'),
    );
    const o365 = track(
      await standIn('* OK ready\r\n', (l, s) => {
        const tag = l.split(' ')[0];
        if (/CAPABILITY/i.test(l)) s.write(`* CAPABILITY IMAP4rev1\r\n${tag} OK done\r\n`);
        else if (/LOGIN/i.test(l)) s.write(`${tag} OK LOGIN completed\r\n`);
        else s.write(`${tag} NO User is authenticated but not connected.\r\n`);
      }),
    );
    await assert.rejects(
      imapLogin(
        parseEndpoint(`imap://127.0.0.1:${o365.port}?tls=none`),
        { user: 'x', password: 'y' },
        client,
        { label: 's', timeouts, forwardClient: true },
      ),
      (e: unknown) => code('EAUTH')(e) && /refused LIST/.test((e as Error).message),
    );
    assert.ok(
      !o365.seen.some((l) => /^\S+ ID /.test(l)),
      'no ID to a server that does not offer it',
    );
  });

  it('PREAUTH, injected bytes after STARTTLS, refused STARTTLS and silence are errors', async () => {
    const preauth = track(
      await standIn('* PREAUTH [CAPABILITY IMAP4rev1] hello\r\n', () => undefined),
    );
    await assert.rejects(
      imapLogin(
        parseEndpoint(`imap://127.0.0.1:${preauth.port}?tls=none`),
        { user: 'x', password: 'y' },
        client,
        { label: 's', timeouts, forwardClient: false },
      ),
      code('EPROTOCOL'),
    );

    const inject = track(
      await standIn('* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n', (l, s) => {
        const tag = l.split(' ')[0];
        if (/STARTTLS/i.test(l)) s.write(`${tag} OK Begin TLS\r\n* OK injected\r\n`);
      }),
    );
    await assert.rejects(
      imapLogin(
        parseEndpoint(`imap://127.0.0.1:${inject.port}?tls=starttls`),
        { user: 'x', password: 'y' },
        client,
        { label: 's', timeouts, forwardClient: false },
      ),
      (e: unknown) =>
        code('EINJECTION')(e) && /after its STARTTLS reply/.test((e as Error).message),
    );
    assert.ok(!inject.seen.some((l) => /LOGIN/i.test(l)), 'no password sent');

    const refuse = track(
      await standIn('+OK ready\r\n', (l, s) => {
        if (l === 'CAPA') s.write('+OK\r\nUSER\r\n.\r\n');
        else if (l === 'STLS') s.write('-ERR not today\r\n');
      }),
    );
    await assert.rejects(
      pop3Login(
        parseEndpoint(`pop3://127.0.0.1:${refuse.port}?tls=starttls`),
        { user: 'x', password: 'y' },
        client,
        { label: 's', timeouts, forwardClient: false },
      ),
      code('ETLS'),
    );
    assert.ok(!refuse.seen.some((l) => /^(USER|PASS)/.test(l)), 'no credentials sent in clear');

    const silent = track(await standIn(null, () => undefined));
    const t0 = Date.now();
    await assert.rejects(
      imapLogin(
        parseEndpoint(`imap://127.0.0.1:${silent.port}?tls=none`),
        { user: 'x', password: 'y' },
        client,
        { label: 's', timeouts, forwardClient: false },
      ),
      code('ETIMEOUT'),
    );
    assert.ok(Date.now() - t0 < 2000);
  });

  it('a server that keeps talking without finishing its reply is a stall: bounded by the timeouts', async () => {
    // Each line arrives well within commandMs; the reply as a whole must too.
    const drips: Array<{ sent(): number }> = [];
    const imap = track(
      await standIn('* OK [CAPABILITY IMAP4rev1] ready\r\n', (l, s) => {
        if (/ LOGIN /.test(l)) drips.push(trickle(s, '* OK still working\r\n'));
      }),
    );
    await assert.rejects(
      imapLogin(
        parseEndpoint(`imap://127.0.0.1:${imap.port}?tls=none`),
        { user: 'x', password: 'y' },
        client,
        { label: 's', timeouts, forwardClient: false },
      ),
      code('ETIMEOUT'),
    );
    const pop3 = track(
      await standIn('+OK ready\r\n', (l, s) => {
        if (l !== 'CAPA') return;
        s.write('+OK\r\n');
        drips.push(trickle(s, 'X-ENDLESS\r\n'));
      }),
    );
    await assert.rejects(
      pop3Login(
        parseEndpoint(`pop3://127.0.0.1:${pop3.port}?tls=none`),
        { user: 'x', password: 'y' },
        client,
        { label: 's', timeouts, forwardClient: false },
      ),
      code('ETIMEOUT'),
    );
    const smtp = track(
      await standIn(null, (l, s) => {
        if (/^EHLO /.test(l)) drips.push(trickle(s, '250-ENDLESS\r\n'));
      }),
    );
    smtp.server.on('connection', (s: Socket) => s.write('220 ready\r\n'));
    await assert.rejects(
      openBackend(parseEndpoint(`smtp://127.0.0.1:${smtp.port}?tls=none`), {
        label: 's',
        timeouts,
        heloName: 'gw.test',
      }),
      code('ETIMEOUT'),
    );
    assert.equal(drips.length, 3);
    for (const d of drips) assert.ok(d.sent() < 300, 'given up while the server still talked');
  });

  it('passwords that need literals, and the master user login', async () => {
    const hard = { user: 'u@example.org', password: 'pw' };
    let literalOf: string | undefined;
    const seen = track(
      await standIn('* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN ID] ready\r\n', (l, s) => {
        const tag = l.split(' ')[0];
        if (/^\S+ ID /.test(l)) s.write(`* ID NIL\r\n${tag} OK ID done\r\n`);
        else if (literalOf) {
          s.write(`${literalOf} OK fine\r\n`);
          literalOf = undefined;
        } else if (/^\S+ LOGIN /.test(l) && l.endsWith('}')) {
          literalOf = tag;
          s.write('+ go\r\n');
        } else if (/LOGIN|AUTHENTICATE|LIST/i.test(l)) s.write(`${tag} OK fine\r\n`);
      }),
    );
    // ID is pipelined before LOGIN: its reply must not be taken for the literal's "+"
    const r = await imapLogin(
      parseEndpoint(`imap://127.0.0.1:${seen.port}?tls=none`),
      { ...hard, password: 'p\u00e4ss "w\\' },
      client,
      { label: 's', timeouts, forwardClient: true },
    );
    r.socket.destroy();
    assert.match(
      seen.seen.find((l) => / ID /.test(l)) ?? '',
      /"x-originating-ip" "192\.0\.2\.7".*"x-session-id" "sess-1"/,
    );
    assert.ok(
      seen.seen.some((l) => /^ap\d+ LOGIN "u@example\.org" \{\d+\}$/.test(l)),
      seen.seen.join('\n'),
    );
    const m = await imapLogin(
      parseEndpoint(`imap://127.0.0.1:${seen.port}?tls=none`),
      { ...hard, master: { user: 'admin', password: 'mpw' } },
      client,
      { label: 's', timeouts, forwardClient: false },
    );
    m.socket.destroy();
    const auth = seen.seen.find((l) => / AUTHENTICATE PLAIN /.test(l))!;
    assert.equal(
      Buffer.from(auth.split(' ').at(-1)!, 'base64').toString(),
      'u@example.org\0admin\0mpw',
    );
    const lists = seen.seen.filter((l) => / LIST /.test(l)).length;
    const quick = await imapLogin(
      parseEndpoint(`imap://127.0.0.1:${seen.port}?tls=none`),
      hard,
      client,
      { label: 's', timeouts, forwardClient: false, confirm: false },
    );
    quick.socket.destroy();
    assert.equal(
      seen.seen.filter((l) => / LIST /.test(l)).length,
      lists,
      'no confirming LIST for a password already proven',
    );
  });
});

describe(
  'the splice is byte-exact under backpressure (reused read buffers)',
  { timeout: 60_000 },
  () => {
    it('20 MB from a fast backend to slow plain and TLS clients arrive unchanged', async () => {
      const { createHash, randomBytes } = await import('node:crypto');
      const { tmpdir } = await import('node:os');
      const { mkdtempSync, rmSync } = await import('node:fs');
      const { join } = await import('node:path');
      const { connect: tlsConnect } = await import('node:tls');
      const { connect: netConnect } = await import('node:net');
      const { startGateway } = await import('../../src/core/gateway/gateway.js');
      const { generateKeyFile, loadKeyring } = await import('../../src/core/state/crypto.js');
      const { openJsonStore } = await import('../../src/core/state/json-store.js');
      const payload = randomBytes(20 * 1024 * 1024);
      const want = createHash('sha256').update(payload).digest('hex');
      const backend = await standIn('* OK [CAPABILITY IMAP4rev1] ready\r\n', (l, s) => {
        const tag = l.split(' ')[0];
        if (/ BIG$/.test(l)) {
          // many writes of odd sizes, as fast as the socket takes them
          for (let off = 0; off < payload.length; off += 77_777)
            s.write(payload.subarray(off, off + 77_777));
          s.write(`\r\n${tag} OK done\r\n`);
        } else s.write(`${tag} OK fine\r\n`);
      });
      const dir = mkdtempSync(join(tmpdir(), 'ap-splice-'));
      await generateKeyFile(join(dir, 'k'));
      const store = await openJsonStore(join(dir, 's.json'));
      const t = await testTls();
      const config = {
        file: join(dir, 'c.yaml'),
        source: { imap: parseEndpoint(`imap://127.0.0.1:${backend.port}?tls=none`), useImap: true },
        destination: {
          imap: parseEndpoint(`imap://127.0.0.1:${backend.port}?tls=none`),
          provision: { kind: 'none' as const },
        },
        listen: { imap: { host: '127.0.0.1', port: 0 }, imaps: { host: '127.0.0.1', port: 0 } },
        tls: { cert: t.certFile, key: t.keyFile },
        domains: ['example.org'],
        strategy: 'proxy' as const,
        state: join(dir, 's.json'),
        stateDir: dir,
        keyFile: join(dir, 'k'),
        logDir: dir,
        transfer: { connections: 1, concurrency: 1 },
        timeouts: { connectMs: 2000, greetingMs: 2000, commandMs: 2000, idleMs: 60_000 },
      };
      const g = await startGateway(config, {
        store,
        keyring: loadKeyring(join(dir, 'k')),
        smtp: false,
        plaintextLogin: 'always',
      });
      try {
        for (const secure of [false, true]) {
          const port = secure ? g.listeners.imaps!.port : g.listeners.imap!.port;
          const sock = secure
            ? tlsConnect({ port, host: '127.0.0.1', ca: t.ca, servername: 'localhost' })
            : netConnect(port, '127.0.0.1');
          const chunks: Buffer[] = [];
          let text = '';
          await new Promise<void>((resolve, reject) => {
            let stage = 0;
            sock.on('error', reject);
            sock.on('data', (d: Buffer) => {
              if (stage < 2) {
                text += d.toString('latin1');
                if (stage === 0 && /^\* OK/m.test(text)) {
                  stage = 1;
                  sock.write('a LOGIN u@example.org pw\r\n');
                } else if (stage === 1 && /^a OK/m.test(text)) {
                  stage = 2;
                  sock.write('b BIG\r\n');
                }
                return;
              }
              chunks.push(Buffer.from(d));
              // a slow reader: the gateway must pause its backend reads, not overwrite them
              sock.pause();
              setTimeout(() => sock.resume(), chunks.length % 50 === 0 ? 20 : 0);
              if (Buffer.concat(chunks.slice(-2)).toString('latin1').endsWith('b OK done\r\n'))
                resolve();
            });
          });
          sock.destroy();
          const all = Buffer.concat(chunks);
          const got = all.subarray(0, payload.length);
          assert.equal(
            all.length,
            payload.length + '\r\nb OK done\r\n'.length,
            `length (${secure ? 'TLS' : 'plain'})`,
          );
          assert.equal(
            createHash('sha256').update(got).digest('hex'),
            want,
            `bytes (${secure ? 'TLS' : 'plain'})`,
          );
        }
      } finally {
        await g.stop(0);
        await store.close();
        backend.server.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  },
);
