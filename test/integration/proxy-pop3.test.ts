/**
 * The POP3 gateway in front of a real source and destination Dovecot, with node-pop3,
 * curl, Python's poplib and raw transcripts as clients.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import Pop3Command from 'node-pop3';
import { parseEndpoint } from '../../src/core/config/endpoint.js';
import { openSealedText } from '../../src/core/state/index.js';
import { freePort, loadCorpus, makeMessage, testTls, type Corpus } from '../support/index.js';
import { RawClient, readIfExists, startProxyLab, type ProxyLab } from './proxy-support.js';

const run = promisify(execFile);
const CANARY = 'Pop-Canary-55d1e0a7';
const users = [
  { user: 'alice@example.org', password: 'alice-secret' },
  { user: 'bob@example.org', password: 'bob-secret' },
  { user: 'carol@example.org', password: CANARY },
  { user: 'dave@example.org', password: 'dave-secret' },
];

function inbox(subjects: string[]): Corpus {
  return {
    folders: [
      {
        path: 'INBOX',
        selectable: true,
        subscribe: true,
        messages: subjects.map((s, i) => ({
          key: s,
          raw: makeMessage({
            from: 'x@example.net',
            to: 'u@example.org',
            subject: s,
            size: 2000 + i,
          }),
          flags: [],
          internalDate: new Date(Date.UTC(2024, 0, i + 1)),
        })),
      },
    ],
  };
}

function pop3(
  port: number,
  user: string,
  password: string,
  extra: Record<string, unknown> = {},
): Pop3Command {
  return new Pop3Command({ host: '127.0.0.1', port, user, password, timeout: 10_000, ...extra });
}

describe('POP3 gateway', { timeout: 120_000 }, () => {
  let p: ProxyLab;
  before(async () => {
    p = await startProxyLab({
      lab: { users },
      tls: true,
      config: (lab) => ({ destination: { pop3: lab.destination.urls.pop3 } }),
    });
    await loadCorpus(
      p.lab.source,
      'alice@example.org',
      'alice-secret',
      inbox(['one', 'two', 'three']),
    );
  });
  after(async () => {
    await p?.stop();
  });

  it('first login (USER/PASS) is spliced to the source and captured', async () => {
    const c = pop3(p.pop3Port, 'alice@example.org', 'alice-secret');
    const stat = await c.STAT();
    assert.match(stat, /^3 \d+/);
    const uidl = await c.UIDL();
    assert.equal(uidl.length, 3);
    const msg = await c.RETR(2);
    assert.match(msg, /Subject: two/);
    await c.QUIT();
    const rec = await p.store.get('alice@example.org');
    assert.equal(rec?.state, 'captured');
    assert.equal(openSealedText(p.keyring, rec!.credentials!, rec!.address), 'alice-secret');
  });

  it('wrong password: the uniform refusal, nothing stored; three failures close', async () => {
    const raw = await RawClient.open(p.pop3Port);
    await raw.waitFor(/^\+OK /);
    raw.send('USER bob@example.org\r\nPASS wrong\r\n');
    await raw.waitFor(/^-ERR \[AUTH\] Authentication failed\.\r\n/m);
    raw.send('USER nobody@example.org\r\nPASS wrong\r\n');
    await raw.waitFor(/(^-ERR \[AUTH\] Authentication failed\.\r\n[\s\S]*){2}/m);
    raw.send(`AUTH PLAIN ${Buffer.from('\0bob@example.org\0bad').toString('base64')}\r\n`);
    await raw.waitClosed();
    assert.equal(raw.text.match(/-ERR \[AUTH\] Authentication failed\./g)?.length, 3);
    assert.equal(await p.store.get('bob@example.org'), undefined);
    assert.equal(await p.store.get('nobody@example.org'), undefined);
  });

  it('AUTH PLAIN with and without an initial response, AUTH LOGIN, CAPA', async () => {
    const b64 = Buffer.from('\0alice@example.org\0alice-secret').toString('base64');
    const r1 = await RawClient.open(p.pop3Port);
    r1.send('CAPA\r\n');
    await r1.waitFor(/^STLS\r\n[\s\S]*^SASL PLAIN LOGIN\r\n\.\r\n/m);
    r1.send(`AUTH PLAIN ${b64}\r\nSTAT\r\n`); // STAT pipelined behind the login goes to the source
    await r1.waitFor(/^\+OK \d+ \d+\r\n/m, 5000, r1.text.indexOf('SASL'));
    r1.close();
    const r2 = await RawClient.open(p.pop3Port);
    r2.send('AUTH PLAIN\r\n');
    await r2.waitFor(/^\+ \r\n/m);
    r2.send(`${b64}\r\n`);
    await r2.waitFor(/^\+OK Logged in/m);
    r2.send('QUIT\r\n');
    await r2.waitClosed();
    const r3 = await RawClient.open(p.pop3Port);
    r3.send('AUTH LOGIN\r\n');
    await r3.waitFor(/^\+ VXNlcm5hbWU6\r\n/m);
    r3.send(`${Buffer.from('alice@example.org').toString('base64')}\r\n`);
    await r3.waitFor(/^\+ UGFzc3dvcmQ6\r\n/m);
    r3.send(`${Buffer.from('alice-secret').toString('base64')}\r\n`);
    await r3.waitFor(/^\+OK Logged in/m);
    r3.close();
  });

  it('curl and Python poplib read mail through the gateway', async () => {
    const { stdout } = await run('curl', [
      '-s',
      '--max-time',
      '10',
      `pop3://127.0.0.1:${p.pop3Port}/1`,
      '--user',
      'alice@example.org:alice-secret',
    ]);
    assert.match(stdout, /Subject: one/);
    const py = [
      'import poplib',
      `m = poplib.POP3("127.0.0.1", ${p.pop3Port})`,
      'm.user("alice@example.org")',
      'm.pass_("alice-secret")',
      'print(m.stat()[0])',
      'm.quit()',
    ].join('\n');
    assert.equal((await run('python3', ['-c', py])).stdout.trim(), '3');
    const t = await testTls();
    const tls = await run('curl', [
      '-s',
      '--max-time',
      '10',
      '--ssl-reqd',
      '--cacert',
      t.caFile,
      `pop3://localhost:${p.pop3Port}/`,
      '--user',
      'alice@example.org:alice-secret',
    ]);
    assert.match(tls.stdout, /^1 \d+\r?\n2 \d+\r?\n3 \d+/);
  });

  it('implicit TLS (995-style) with node-pop3', async () => {
    const t = await testTls();
    const c = pop3(p.gateway.listeners.pop3s!.port, 'alice@example.org', 'alice-secret', {
      tls: true,
      servername: 'localhost',
      tlsOptions: { ca: t.ca },
    });
    const stat = await c.STAT();
    assert.match(stat, /^3 /);
    await c.QUIT();
  });

  it('transferring: SYS/TEMP; migrated: the destination; migrated without destination POP3: SYS/TEMP', async () => {
    await p.store.upsert('bob@example.org', { state: 'transferring' });
    const raw = await RawClient.open(p.pop3Port);
    raw.send('USER bob@example.org\r\nPASS bob-secret\r\n');
    await raw.waitFor(/^-ERR \[SYS\/TEMP\] .*try again in a few minutes\.\r\n/m);
    raw.close();
    await p.store.remove('bob@example.org');

    const u = 'dave@example.org';
    await p.lab.destination.addUser(u, 'dave-secret');
    await loadCorpus(p.lab.destination, u, 'dave-secret', inbox(['dest-only']));
    await p.store.upsert(u, { state: 'migrated' });
    const c = pop3(p.pop3Port, u, 'dave-secret');
    const msg = await c.RETR(1);
    assert.match(msg, /Subject: dest-only/);
    await c.QUIT();

    const cfg = {
      ...p.config,
      listen: { pop3: { host: '127.0.0.1', port: 0 } },
      destination: { ...p.config.destination, pop3: undefined },
    };
    const g = await p.another({}, cfg);
    const r2 = await RawClient.open(g.listeners.pop3!.port);
    r2.send(`USER ${u}\r\nPASS dave-secret\r\n`);
    await r2.waitFor(/^-ERR \[SYS\/TEMP\] /m);
    r2.close();
  });

  it('STLS with pipelined commands is refused', async () => {
    const raw = await RawClient.open(p.pop3Port);
    await raw.waitFor(/^\+OK/);
    raw.send('STLS\r\nUSER alice@example.org\r\nPASS alice-secret\r\n');
    await raw.waitFor(/^-ERR Commands sent after STLS/m);
    await raw.waitClosed();
    assert.ok(!/^\+OK Begin TLS/m.test(raw.text));
  });

  it('plaintext logins refused where TLS is required: no USER/SASL in CAPA', async () => {
    const g = await p.another({ plaintextLogin: 'never' });
    const raw = await RawClient.open(g.listeners.pop3!.port);
    raw.send('CAPA\r\n');
    await raw.waitFor(/^\.\r\n/m);
    assert.ok(/^STLS\r\n/m.test(raw.text));
    assert.ok(!/^(USER|SASL)/m.test(raw.text));
    raw.send('USER alice@example.org\r\n');
    await raw.waitFor(/^-ERR \[AUTH\] Use STLS/m);
    raw.close();
    const imap = await RawClient.open(g.listeners.imap!.port);
    await imap.waitFor(/LOGINDISABLED/);
    imap.send('a LOGIN alice@example.org alice-secret\r\n');
    await imap.waitFor(/^a NO \[PRIVACYREQUIRED\] /m);
    imap.close();
  });

  it('hostile input: long line, NUL, garbage; other sessions go on', async () => {
    const live = pop3(p.pop3Port, 'alice@example.org', 'alice-secret');
    await live.STAT();
    const long = await RawClient.open(p.pop3Port);
    long.send(`USER ${'x'.repeat(20_000)}`);
    await long.waitFor(/^-ERR Line too long\. Closing\.\r\n/m);
    await long.waitClosed();
    const nul = await RawClient.open(p.pop3Port);
    nul.send('USER al\0ice@example.org\r\n');
    await nul.waitFor(/^-ERR NUL/m);
    nul.send('AUTH PLAIN %%%%\r\n');
    await nul.waitFor(/^-ERR Invalid base64 data\.\r\n/m);
    nul.close();
    const garbage = await RawClient.open(p.pop3Port);
    garbage.send(Array.from({ length: 10_000 }, (_, i) => `GARBAGE${i} x\r\n`).join(''));
    await garbage.waitClosed();
    assert.ok(garbage.text.length < 1000);
    const stat = await live.STAT();
    assert.match(stat, /^3 /);
    await live.QUIT();
  });

  it('a source that is down gives SYS/TEMP', async () => {
    const port = await freePort();
    const cfg = {
      ...p.config,
      listen: { pop3: { host: '127.0.0.1', port: 0 } },
      source: { ...p.config.source, pop3: parseEndpoint(`pop3://127.0.0.1:${port}?tls=none`) },
    };
    const g = await p.another({}, cfg);
    const raw = await RawClient.open(g.listeners.pop3!.port);
    raw.send('USER bob@example.org\r\nPASS bob-secret\r\n');
    await raw.waitFor(/^-ERR \[SYS\/TEMP\] /m);
    raw.close();
  });

  it('the canary password is in no log and not in clear in the state file', async () => {
    const c = pop3(p.pop3Port, 'carol@example.org', CANARY);
    await c.STAT();
    await c.QUIT();
    const raw = await RawClient.open(p.pop3Port);
    raw.send(
      `USER carol@example.org\r\nPASS ${CANARY}-wrong\r\nAUTH PLAIN ${Buffer.from(`\0carol@example.org\0${CANARY}`).toString('base64')}\r\n`,
    );
    await raw.waitFor(/^\+OK Logged in/m);
    raw.close();
    await p.store.flush();
    await p.sessionLog.flush();
    const b64 = Buffer.from(CANARY).toString('base64').slice(0, 12);
    for (const [where, text] of Object.entries({
      logs: p.logText(),
      sessions: readIfExists(join(p.config.logDir, 'sessions.jsonl')),
      state: readIfExists(p.config.state),
    })) {
      assert.ok(!text.includes(CANARY), `canary in ${where}`);
      assert.ok(!text.includes(b64), `base64 canary in ${where}`);
    }
    assert.equal((await p.store.get('carol@example.org'))?.state, 'captured');
  });
});
