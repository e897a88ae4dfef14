/**
 * The IMAP check probe against scripted stand-in servers (test/unit/check-standin.ts) for
 * the faults: bad greeting, no STARTTLS, bytes after the STARTTLS reply, PREAUTH, timeouts,
 * refused connections, TLS/plain mismatch, bad certificates, and an optional login.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { probeImap } from '../../src/core/check/index.js';
import { freePort } from '../support/ports.js';
import {
  cap,
  closeStandIns,
  imapServer,
  loadCerts,
  probe,
  standIn,
  type Certs,
} from './check-standin.js';

let certs: Certs;
before(async () => {
  certs = await loadCerts();
});
after(closeStandIns);

describe('IMAP probe', () => {
  it('reads the greeting, upgrades with STARTTLS and judges the post-TLS capabilities', async () => {
    const s = await standIn(
      imapServer({ post: 'IMAP4rev1 AUTH=PLAIN UIDPLUS CONDSTORE APPENDLIMIT=1000 ID' }),
    );
    const r = await probe(
      probeImap,
      `imap://127.0.0.1:${s.port}?tls=starttls`,
      {},
      { side: 'destination' },
    );
    assert.equal(r.ok, true, JSON.stringify(r.findings));
    assert.equal(r.greeting, '* OK stand-in ready');
    assert.equal(typeof r.connectMs, 'number');
    assert.deepEqual(r.preTlsCapabilities, ['IMAP4rev1', 'STARTTLS', 'LOGINDISABLED']);
    assert.deepEqual(r.rawCapabilities, [
      'IMAP4rev1',
      'AUTH=PLAIN',
      'UIDPLUS',
      'CONDSTORE',
      'APPENDLIMIT=1000',
      'ID',
    ]);
    assert.equal(r.tls?.mode, 'starttls');
    assert.equal(r.tls?.verification, 'valid');
    assert.equal(r.tls?.nameMatches, true);
    assert.match(r.tls?.subject ?? '', /CN=localhost/);
    assert.match(r.tls?.issuer ?? '', /CN=AutoPort Test CA/);
    assert.ok(r.tls?.protocol?.startsWith('TLSv1.'));
    assert.equal(cap(r, 'LOGINDISABLED')?.present, true);
    assert.equal(cap(r, 'LOGINDISABLED')?.level, 'ok');
    assert.equal(cap(r, 'UIDPLUS')?.present, true);
    assert.equal(cap(r, 'APPENDLIMIT')?.value, '1000');
    assert.equal(cap(r, 'AUTH')?.value, 'PLAIN');
    assert.equal(cap(r, 'AUTH')?.level, 'ok');
    // not announced before login and no login: unknown, not "missing"
    assert.equal(cap(r, 'SPECIAL-USE')?.present, null);
    assert.deepEqual(s.received, ['A1 CAPABILITY', 'A2 STARTTLS', 'A3 CAPABILITY', 'A9 LOGOUT']);
    await s.close();
  });

  it('refuses a server without STARTTLS and sends nothing more in plain text', async () => {
    const s = await standIn(imapServer({ pre: 'IMAP4rev1 AUTH=PLAIN' }));
    const r = await probe(probeImap, `imap://127.0.0.1:${s.port}?tls=starttls`);
    assert.equal(r.ok, false);
    assert.equal(r.error?.code, 'ENOSTARTTLS');
    assert.match(
      r.error?.message ?? '',
      /does not offer STARTTLS, and the URL says tls=starttls; AutoPort never falls back to plain text/,
    );
    assert.match(r.error?.hint ?? '', /imaps:\/\/127\.0\.0\.1:993/);
    await new Promise((res) => setTimeout(res, 50));
    assert.deepEqual(s.received, ['A1 CAPABILITY']);
    await s.close();
  });

  it('refuses bytes buffered behind the STARTTLS reply (CVE-2021-38371)', async () => {
    const s = await standIn(
      imapServer({
        startTlsReply: (tag) => `${tag} OK Begin TLS\r\n* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n`,
      }),
    );
    const r = await probe(probeImap, `imap://127.0.0.1:${s.port}?tls=starttls`);
    assert.equal(r.ok, false);
    assert.equal(r.error?.code, 'ESTARTTLS_INJECTION');
    assert.match(
      r.error?.message ?? '',
      /sent 35 extra byte\(s\) after its STARTTLS reply, before TLS/,
    );
    assert.equal(r.tls, undefined);
    assert.ok(!r.transcript.some((l) => l.startsWith('-- TLS')));
    await s.close();
  });

  it('refuses a STARTTLS the server answers with NO', async () => {
    const s = await standIn(
      imapServer({ startTlsReply: (tag) => `${tag} NO TLS not configured\r\n` }),
    );
    const r = await probe(probeImap, `imap://127.0.0.1:${s.port}?tls=starttls`);
    assert.equal(r.error?.code, 'ESTARTTLS');
    assert.match(r.error?.message ?? '', /refused STARTTLS: "A2 NO TLS not configured"/);
    await s.close();
  });

  it('treats a PREAUTH greeting as an error', async () => {
    const s = await standIn(
      imapServer({ greeting: '* PREAUTH IMAP4rev1 server logged in as root' }),
    );
    const r = await probe(probeImap, `imap://127.0.0.1:${s.port}?tls=starttls`);
    assert.equal(r.ok, false);
    assert.equal(r.error?.code, 'EPREAUTH');
    assert.equal(r.greeting, '* PREAUTH IMAP4rev1 server logged in as root');
    assert.deepEqual(s.received, []);
    await s.close();
  });

  it('names a greeting from another protocol', async () => {
    const s = await standIn(async (c) => c.send('+OK POP3 ready\r\n'));
    const r = await probe(probeImap, `imap://127.0.0.1:${s.port}?tls=none`);
    assert.equal(r.error?.code, 'EGREETING');
    assert.match(
      r.error?.message ?? '',
      /unexpected greeting "\+OK POP3 ready": not an IMAP server/,
    );
    assert.match(r.error?.hint ?? '', /looks like POP3: use pop3:\/\//);
    await s.close();
  });

  it('reports a BYE greeting as a refusal', async () => {
    const s = await standIn(async (c) => c.send('* BYE Too many connections from your IP\r\n'));
    const r = await probe(probeImap, `imap://127.0.0.1:${s.port}?tls=none`);
    assert.equal(r.error?.code, 'EREFUSED');
    assert.match(r.error?.message ?? '', /Too many connections/);
    await s.close();
  });

  it('times out on a silent server and suggests implicit TLS', async () => {
    const s = await standIn(async () => undefined);
    const started = Date.now();
    const r = await probe(probeImap, `imap://127.0.0.1:${s.port}?tls=none`, {
      timeouts: { connectMs: 2000, greetingMs: 300, commandMs: 2000 },
    });
    assert.ok(Date.now() - started < 1500, 'gave up in time');
    assert.equal(r.error?.code, 'ETIMEOUT');
    assert.match(r.error?.message ?? '', /did not send a greeting within 300 ms/);
    assert.match(r.error?.hint ?? '', /implicit-TLS port waits for the client .* imaps:\/\//);
    await s.close();
  });

  it('times out on a command that gets no reply', async () => {
    const s = await standIn(async (c) => {
      c.send('* OK hi\r\n');
      await c.line();
    });
    const r = await probe(probeImap, `imap://127.0.0.1:${s.port}?tls=none`, {
      timeouts: { connectMs: 2000, greetingMs: 2000, commandMs: 300 },
    });
    assert.equal(r.error?.code, 'ETIMEOUT');
    assert.match(r.error?.message ?? '', /did not send a reply to CAPABILITY within 300 ms/);
    await s.close();
  });

  it('says nothing listens on a closed port', async () => {
    const port = await freePort();
    const r = await probe(probeImap, `imap://127.0.0.1:${port}?tls=none`);
    assert.equal(r.ok, false);
    assert.deepEqual(r.error, {
      code: 'ECONNREFUSED',
      message: `nothing listens on 127.0.0.1:${port}`,
      hint: 'is the server running / is the port right?',
    });
  });

  it('explains imaps:// against a plain port', async () => {
    const s = await standIn(imapServer({}));
    const r = await probe(probeImap, `imaps://127.0.0.1:${s.port}`);
    assert.equal(r.error?.code, 'ETLS');
    assert.equal(r.error?.message, 'TLS handshake failed: the server did not answer TLS');
    assert.equal(r.error?.hint, 'is this port plain? try tls=starttls');
    await s.close();
  });

  it('reports a connection closed before the greeting', async () => {
    const s = await standIn(async (c) => void c.socket.end());
    const r = await probe(probeImap, `imap://127.0.0.1:${s.port}?tls=none`);
    assert.equal(r.error?.code, 'ECLOSED');
    assert.match(
      r.error?.message ?? '',
      /closed the connection while AutoPort waited for a greeting/,
    );
    await s.close();
  });

  it('refuses an endless line', async () => {
    const s = await standIn(async (c) => c.send(`* OK ${'x'.repeat(20000)}`));
    const r = await probe(probeImap, `imap://127.0.0.1:${s.port}?tls=none`);
    assert.equal(r.error?.code, 'ELINE');
    await s.close();
  });

  it('judges certificates: self-signed, untrusted, name mismatch, verify=false', async () => {
    const good = await standIn(imapServer({}), { cert: certs.cert, key: certs.key });
    const self = await standIn(imapServer({}), certs.selfSigned);

    const selfR = await probe(probeImap, `imaps://127.0.0.1:${self.port}`);
    assert.equal(selfR.ok, false);
    assert.equal(selfR.tls?.verification, 'self-signed');
    assert.equal(selfR.tls?.mode, 'implicit');
    const f = selfR.findings.find((x) => x.code === 'ECERT');
    assert.match(f?.message ?? '', /^certificate not accepted: self-signed \(CN=self\.test\)/);
    assert.match(f?.hint ?? '', /NODE_EXTRA_CA_CERTS/);
    assert.equal(
      selfR.greeting,
      '* OK stand-in ready',
      'the probe went on after describing the certificate',
    );

    const unchecked = await probe(probeImap, `imaps://127.0.0.1:${self.port}?verify=false`);
    assert.equal(unchecked.ok, true);
    assert.equal(unchecked.tls?.enforced, false);
    assert.equal(unchecked.findings.find((x) => x.code === 'ECERT_UNCHECKED')?.level, 'warn');

    const untrusted = await probe(probeImap, `imaps://127.0.0.1:${good.port}`, { ca: undefined });
    assert.equal(untrusted.tls?.verification, 'untrusted');
    assert.equal(untrusted.ok, false);

    const mismatch = await probe(
      probeImap,
      `imaps://127.0.0.1:${good.port}?servername=mail.example.org`,
    );
    assert.equal(mismatch.tls?.verification, 'name-mismatch');
    assert.equal(mismatch.tls?.nameMatches, false);
    assert.match(
      mismatch.findings[0]?.message ?? '',
      /issued for 127\.0\.0\.1, .*localhost, not mail\.example\.org/,
    );

    const ok = await probe(probeImap, `imaps://127.0.0.1:${good.port}`);
    assert.equal(ok.ok, true);
    assert.equal(ok.tls?.verification, 'valid');
    await good.close();
    await self.close();
  });

  it('logs in only when given credentials, hides them, and reads post-login capabilities', async () => {
    const secret = 'Zq9"ss\\w0rd';
    const s = await standIn(
      imapServer({
        pre: 'IMAP4rev1 STARTTLS',
        post: 'IMAP4rev1 AUTH=PLAIN SASL-IR',
        onLine: (c, line) => {
          const m = /^(\S+) AUTHENTICATE PLAIN (\S+)$/.exec(line);
          if (!m) return false;
          const [, user, pass] = Buffer.from(m[2] ?? '', 'base64')
            .toString()
            .split('\0');
          c.send(
            user === 'u@example.org' && pass === secret
              ? `${m[1]} OK [CAPABILITY IMAP4rev1 UIDPLUS SPECIAL-USE] Logged in\r\n`
              : `${m[1]} NO [AUTHENTICATIONFAILED] Authentication failed.\r\n`,
          );
          return true;
        },
      }),
    );
    const url = `imap://127.0.0.1:${s.port}?tls=starttls`;
    const r = await probe(probeImap, url, {
      credentials: { source: { user: 'u@example.org', password: secret } },
    });
    assert.equal(r.ok, true, JSON.stringify(r.findings));
    assert.equal(r.loggedInAs, 'u@example.org');
    assert.equal(cap(r, 'SPECIAL-USE')?.present, true);
    assert.equal(cap(r, 'AUTH')?.value, 'PLAIN', 'login methods come from the list before login');
    const b64 = Buffer.from(`\0u@example.org\0${secret}`).toString('base64');
    assert.ok(
      !JSON.stringify(r).includes(b64) && !JSON.stringify(r).includes('Zq9'),
      'no secret in the report',
    );

    const bad = await probe(probeImap, url, {
      credentials: { source: { user: 'u@example.org', password: 'nope' } },
    });
    assert.equal(bad.error?.code, 'ELOGIN');
    assert.match(
      bad.error?.message ?? '',
      /login as u@example.org failed: "NO \[AUTHENTICATIONFAILED\]/,
    );

    const none = await probe(probeImap, url, {
      credentials: { destination: { user: 'x', password: 'y' } },
    });
    assert.equal(none.loggedInAs, undefined, 'credentials for the other side are not used');
    await s.close();
  });
});
