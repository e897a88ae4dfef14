/**
 * The IMAP gateway in front of a real source and destination Dovecot, with imapflow,
 * curl, Python's imaplib and raw transcripts as clients: capture on first login, uniform
 * refusal of wrong passwords, routing by account state, hostile input, STARTTLS injection,
 * a source that is down, and no password in any log or in the state file.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parseEndpoint } from '../../src/core/config/endpoint.js';
import { openSealedText } from '../../src/core/state/index.js';
import { freePort, loadCorpus, makeMessage, standardCorpus, testTls } from '../support/index.js';
import {
  gatewayImap,
  RawClient,
  readIfExists,
  startProxyLab,
  type ProxyLab,
} from './proxy-support.js';

const run = promisify(execFile);
const CANARY = 'Canary-7f3e9b1c-pw';
const users = [
  { user: 'alice@example.org', password: 'alice-secret' },
  { user: 'bob@example.org', password: 'bob-secret' },
  { user: 'carol@example.org', password: CANARY },
  { user: 'dave@example.org', password: 'dave-secret' },
  { user: 'erin@example.org', password: 'erin secret "quoted" \\ back' },
];

describe('IMAP gateway', { timeout: 120_000 }, () => {
  let p: ProxyLab;
  let inboxCount = 0;
  before(async () => {
    p = await startProxyLab({ lab: { users }, tls: true });
    const loaded = await loadCorpus(
      p.lab.source,
      'alice@example.org',
      'alice-secret',
      standardCorpus(),
    );
    inboxCount = loaded.folders.find((f) => f.path === 'INBOX')!.uids.length;
  });
  after(async () => {
    await p?.stop();
  });

  it('first login is spliced to the source and the credentials are captured, sealed', async () => {
    const c = gatewayImap(p.imapPort, 'alice@example.org', 'alice-secret');
    await c.connect();
    const box = await c.mailboxOpen('INBOX');
    assert.equal(box.exists, inboxCount);
    // the client sees the source's post-login capabilities, not the gateway's pre-login list
    assert.ok(c.capabilities.has('IDLE'), 'post-login capabilities come from the backend');
    await c.logout();
    const rec = await p.store.get('alice@example.org');
    assert.equal(rec?.state, 'captured');
    assert.ok(rec?.credentials);
    assert.equal(openSealedText(p.keyring, rec.credentials, 'alice@example.org'), 'alice-secret');
    await p.store.flush();
    // the capture is durable in the journal, not (yet) in the snapshot: look at every file
    const stateDir = dirname(p.config.state);
    const files = readdirSync(stateDir).filter((f) => statSync(join(stateDir, f)).isFile());
    assert.ok(
      files.some((f) => readFileSync(join(stateDir, f), 'latin1').includes('alice@example.org')),
    );
    for (const f of files)
      assert.ok(
        !readFileSync(join(stateDir, f), 'latin1').includes('alice-secret'),
        `${f} holds the password`,
      );
  });

  it('wrong password: the uniform refusal, nothing stored', async () => {
    const raw = await RawClient.open(p.imapPort);
    await raw.waitFor(/^\* OK .*\r\n/);
    raw.send('A1 LOGIN bob@example.org wrong-password\r\n');
    await raw.waitFor(/^A1 NO \[AUTHENTICATIONFAILED\] Authentication failed\.\r\n/m);
    raw.send('A2 LOGIN nobody@example.org whatever\r\n');
    const m = await raw.waitFor(/^A2 (.*)\r\n/m);
    assert.equal(m[1], 'NO [AUTHENTICATIONFAILED] Authentication failed.', 'no user enumeration');
    raw.send('A3 LOGOUT\r\n');
    await raw.waitClosed();
    assert.equal(await p.store.get('bob@example.org'), undefined);
    assert.equal(await p.store.get('nobody@example.org'), undefined);
    const c = gatewayImap(p.imapPort, 'bob@example.org', 'nope');
    await assert.rejects(
      c.connect(),
      (e: { authenticationFailed?: boolean }) => e.authenticationFailed === true,
    );
  });

  it('three failures close the connection', async () => {
    const raw = await RawClient.open(p.imapPort);
    await raw.waitFor(/^\* OK/);
    for (const t of ['a', 'b', 'c']) raw.send(`${t} LOGIN dave@example.org bad-${t}\r\n`);
    await raw.waitFor(/^c NO \[AUTHENTICATIONFAILED\]/m);
    await raw.waitFor(/^\* BYE /m);
    await raw.waitClosed();
  });

  it('LOGIN with literals (sync and LITERAL+) and quoted specials; AUTHENTICATE PLAIN and LOGIN', async () => {
    const erin = users[4]!;
    const raw = await RawClient.open(p.imapPort);
    await raw.waitFor(/^\* OK \[CAPABILITY [^\]]*LITERAL\+[^\]]*AUTH=PLAIN/);
    const pw = Buffer.from(erin.password);
    raw.send(`L1 LOGIN {${erin.user.length}}\r\n`);
    await raw.waitFor(/^\+ /m);
    raw.send(`${erin.user} {${pw.length}+}\r\n${erin.password}\r\n`);
    await raw.waitFor(/^L1 OK \[CAPABILITY /m);
    raw.send('L2 SELECT INBOX\r\n');
    await raw.waitFor(/^L2 OK /m);
    raw.close();

    const b64 = Buffer.from(`\0${erin.user}\0${erin.password}`).toString('base64');
    const r2 = await RawClient.open(p.imapPort);
    r2.send(`P1 AUTHENTICATE PLAIN ${b64}\r\nP2 NOOP\r\n`); // pipelined NOOP goes to the source
    await r2.waitFor(/^P1 OK /m);
    await r2.waitFor(/^P2 OK /m);
    r2.close();

    const r3 = await RawClient.open(p.imapPort);
    r3.send('P1 AUTHENTICATE PLAIN\r\n');
    await r3.waitFor(/^\+ ?\r\n/m);
    r3.send(`${b64}\r\n`);
    await r3.waitFor(/^P1 OK /m);
    r3.close();

    const r4 = await RawClient.open(p.imapPort);
    r4.send('G1 AUTHENTICATE LOGIN\r\n');
    await r4.waitFor(/^\+ VXNlcm5hbWU6\r\n/m);
    r4.send(`${Buffer.from(erin.user).toString('base64')}\r\n`);
    await r4.waitFor(/^\+ UGFzc3dvcmQ6\r\n/m);
    r4.send(`${Buffer.from(erin.password).toString('base64')}\r\n`);
    await r4.waitFor(/^G1 OK /m);
    r4.close();
    assert.equal((await p.store.get(erin.user))?.state, 'captured');
  });

  it('a migrated account goes to the destination, never the source', async () => {
    const u = 'dave@example.org';
    await p.lab.destination.addUser(u, 'dave-secret');
    const marker = makeMessage({ from: 'x@example.net', to: u, subject: 'only-on-destination' });
    await loadCorpus(p.lab.destination, u, 'dave-secret', {
      folders: [
        {
          path: 'INBOX',
          selectable: true,
          subscribe: true,
          messages: [
            { key: 'm', raw: marker, flags: [], internalDate: new Date('2024-01-01T00:00:00Z') },
          ],
        },
      ],
    });
    await p.store.upsert(u, { state: 'migrated' });
    const c = gatewayImap(p.imapPort, u, 'dave-secret');
    await c.connect();
    await c.mailboxOpen('INBOX');
    const subjects: string[] = [];
    for await (const m of c.fetch('1:*', { envelope: true }))
      subjects.push(m.envelope?.subject ?? '');
    await c.logout();
    assert.deepEqual(subjects, ['only-on-destination']);
    const routes = p
      .logText()
      .split('\n')
      .filter((l) => l.includes('"event":"session.route"') && l.includes(u));
    assert.ok(routes.at(-1)?.includes('"target":"destination"'), routes.join('\n'));
  });

  it('a migrated account through the master user, the password checked against the captured one', async () => {
    const u = 'dave@example.org';
    const g = await p.another({ destinationLogin: 'master' });
    const port = g.listeners.imap!.port;
    // no captured password yet: refused (the master login would accept anything)
    const r0 = await RawClient.open(port);
    r0.send('M0 LOGIN dave@example.org dave-secret\r\n');
    await r0.waitFor(/^M0 NO \[AUTHENTICATIONFAILED\]/m);
    r0.close();
    const { seal } = await import('../../src/core/state/crypto.js');
    await p.store.upsert(u, { credentials: seal(p.keyring, 'dave-secret', u) });
    const c = gatewayImap(port, u, 'dave-secret');
    await c.connect();
    const box = await c.mailboxOpen('INBOX');
    assert.equal(box.exists, 1);
    await c.logout();
    const r = await RawClient.open(port);
    r.send('M1 LOGIN dave@example.org not-the-password\r\n');
    await r.waitFor(/^M1 NO \[AUTHENTICATIONFAILED\] Authentication failed\.\r\n/m);
    r.close();
  });

  it('an account being transferred gets UNAVAILABLE', async () => {
    await p.store.upsert('bob@example.org', { state: 'transferring' });
    try {
      const raw = await RawClient.open(p.imapPort);
      raw.send('T1 LOGIN bob@example.org bob-secret\r\n');
      await raw.waitFor(/^T1 NO \[UNAVAILABLE\] .*try again in a few minutes\.\r\n/m);
      raw.close();
    } finally {
      await p.store.remove('bob@example.org');
    }
  });

  it('STARTTLS: pipelined commands are refused; a clean STARTTLS works with imapflow', async () => {
    const raw = await RawClient.open(p.imapPort);
    await raw.waitFor(/STARTTLS/);
    raw.send('S1 STARTTLS\r\nS2 LOGIN alice@example.org alice-secret\r\n');
    await raw.waitFor(/^S1 BAD /m);
    await raw.waitClosed();
    assert.ok(!/^S1 OK/m.test(raw.text));
    assert.ok(!/^S2 /m.test(raw.text), 'the injected command was never answered');
    const t = await testTls();
    const c = gatewayImap(p.imapPort, 'alice@example.org', 'alice-secret', {
      doSTARTTLS: true,
      tls: { ca: t.ca, servername: 'localhost' },
    });
    await c.connect();
    await c.mailboxOpen('INBOX');
    await c.logout();
  });

  it('implicit TLS listener (993-style)', async () => {
    const t = await testTls();
    const c = gatewayImap(p.gateway.listeners.imaps!.port, 'alice@example.org', 'alice-secret', {
      secure: true,
      tls: { ca: t.ca, servername: 'localhost' },
    });
    await c.connect();
    assert.equal((await c.mailboxOpen('INBOX')).exists, inboxCount);
    await c.logout();
  });

  it('hostile input gets protocol errors and a close; other sessions go on', async () => {
    const live = gatewayImap(p.imapPort, 'alice@example.org', 'alice-secret');
    await live.connect();
    await live.mailboxOpen('INBOX');

    const long = await RawClient.open(p.imapPort);
    long.send(`X1 LOGIN ${'a'.repeat(20_000)}`);
    await long.waitFor(/^\* BAD Line too long\.\r\n/m);
    await long.waitClosed();

    const lit = await RawClient.open(p.imapPort);
    lit.send('X2 LOGIN {100000}\r\n');
    await lit.waitFor(/^X2 BAD Literal too big\.\r\n/m);
    lit.close();

    const nul = await RawClient.open(p.imapPort);
    nul.send('X3 LOGIN {9+}\r\nal\0ce@x.y pw\r\nX4 LOGIN "a\r\n');
    await nul.waitFor(/^X3 BAD .*NUL/m);
    nul.close();

    const crlf = await RawClient.open(p.imapPort);
    crlf.send('X5 LOGIN {7+}\r\nal\r\nice pw\r\n');
    await crlf.waitFor(/^X5 BAD Invalid user name\.\r\n/m);
    crlf.close();

    const b64 = await RawClient.open(p.imapPort);
    b64.send('X6 AUTHENTICATE PLAIN bad-base64!\r\n');
    await b64.waitFor(/^X6 BAD Invalid base64 data\.\r\n/m);
    b64.send('X7 AUTHENTICATE PLAIN\r\n');
    await b64.waitFor(/^\+/m);
    b64.send('@@@@\r\n');
    await b64.waitFor(/^X7 BAD Invalid base64 data\.\r\n/m);
    b64.close();

    const garbage = await RawClient.open(p.imapPort);
    const lines = Array.from({ length: 10_000 }, (_, i) => `garbage line ${i} ((("\r\n`).join('');
    garbage.send(lines);
    await garbage.waitFor(/^\* BYE Too many invalid commands\.\r\n/m);
    await garbage.waitClosed();
    assert.ok(garbage.text.length < 2000, 'the gateway stopped answering after closing');

    await live.noop();
    const box = await live.status('INBOX', { messages: true });
    assert.equal(box && box.messages, inboxCount);
    await live.logout();
  });

  it('curl and Python imaplib log in through the gateway', async () => {
    const { stdout } = await run('curl', [
      '-s',
      '--max-time',
      '10',
      `imap://127.0.0.1:${p.imapPort}/`,
      '--user',
      'alice@example.org:alice-secret',
    ]);
    assert.match(stdout, /INBOX/);
    const py = [
      'import imaplib, sys',
      `m = imaplib.IMAP4("127.0.0.1", ${p.imapPort})`,
      'm.login("alice@example.org", "alice-secret")',
      'typ, data = m.select("INBOX", readonly=True)',
      'print(typ, data[0].decode())',
      'm.logout()',
    ].join('\n');
    const r = await run('python3', ['-c', py]);
    assert.equal(r.stdout.trim(), `OK ${inboxCount}`);
  });

  it('a source that is down gives a temporary failure, not a crash', async () => {
    const port = await freePort();
    const cfg = {
      ...p.config,
      listen: { imap: { host: '127.0.0.1', port: 0 } },
      source: { ...p.config.source, imap: parseEndpoint(`imap://127.0.0.1:${port}?tls=none`) },
    };
    const g = await p.another({}, cfg);
    const raw = await RawClient.open(g.listeners.imap!.port);
    raw.send('D1 LOGIN bob@example.org bob-secret\r\n');
    await raw.waitFor(/^D1 NO \[UNAVAILABLE\] /m);
    raw.send('D2 NOOP\r\n');
    await raw.waitFor(/^D2 OK/m);
    raw.close();
    assert.equal(await p.store.get('bob@example.org'), undefined);
  });

  it('the canary password is in no log and not in clear in the state file', async () => {
    const c = gatewayImap(p.imapPort, 'carol@example.org', CANARY);
    await c.connect();
    await c.logout();
    const raw = await RawClient.open(p.imapPort);
    raw.send(
      `C1 LOGIN carol@example.org "${CANARY}x"\r\nC2 AUTHENTICATE PLAIN ${Buffer.from(`\0carol@example.org\0${CANARY}`).toString('base64')}\r\n`,
    );
    await raw.waitFor(/^C2 OK/m);
    raw.close();
    await p.store.flush();
    await p.sessionLog.flush();
    const b64 = Buffer.from(CANARY).toString('base64').slice(0, 12);
    const places = {
      logs: p.logText(),
      sessions: readIfExists(join(p.config.logDir, 'sessions.jsonl')),
      state: readIfExists(p.config.state),
    };
    assert.ok(places.logs.includes('carol@example.org'), 'the logs do mention the account');
    for (const [where, text] of Object.entries(places)) {
      assert.ok(!text.includes(CANARY), `canary in ${where}`);
      assert.ok(!text.includes(b64), `base64 canary in ${where}`);
    }
    assert.equal((await p.store.get('carol@example.org'))?.state, 'captured');
  });
});
