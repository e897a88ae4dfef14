/** The POP3 and SMTP/LMTP check probes against scripted stand-in servers. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { probePop3, probeSmtp } from '../../src/core/check/index.js';
import {
  cap,
  closeStandIns,
  loadCerts,
  pop3Server,
  probe,
  smtpServer,
  standIn,
} from './check-standin.js';

before(async () => {
  await loadCerts();
});
after(closeStandIns);

describe('POP3 probe', () => {
  it('upgrades with STLS and reads CAPA again', async () => {
    const s = await standIn(pop3Server({}));
    const r = await probe(probePop3, `pop3://127.0.0.1:${s.port}?tls=starttls`);
    assert.equal(r.ok, true, JSON.stringify(r.findings));
    assert.equal(r.tls?.verification, 'valid');
    assert.deepEqual(s.received, ['CAPA', 'STLS', 'CAPA', 'QUIT']);
    assert.equal(cap(r, 'STLS')?.present, true);
    assert.equal(cap(r, 'UIDL')?.present, true);
    assert.equal(cap(r, 'SASL')?.value, 'PLAIN');
    await s.close();
  });

  it('refuses a server without STLS', async () => {
    const s = await standIn(pop3Server({ capa: ['UIDL', 'USER'] }));
    const r = await probe(probePop3, `pop3://127.0.0.1:${s.port}?tls=starttls`);
    assert.equal(r.error?.code, 'ENOSTARTTLS');
    assert.match(r.error?.hint ?? '', /pop3s:\/\/127\.0\.0\.1:995/);
    await new Promise((res) => setTimeout(res, 50));
    assert.deepEqual(s.received, ['CAPA']);
    await s.close();
  });

  it('refuses bytes buffered behind the STLS reply', async () => {
    const s = await standIn(pop3Server({ stlsReply: '+OK Begin TLS\r\n+OK injected\r\n' }));
    const r = await probe(probePop3, `pop3://127.0.0.1:${s.port}?tls=starttls`);
    assert.equal(r.error?.code, 'ESTARTTLS_INJECTION');
    await s.close();
  });

  it('warns when there is no CAPA, and fails without UIDL when the copy needs it', async () => {
    const noCapa = await standIn(pop3Server({ capa: null }));
    const r = await probe(probePop3, `pop3://127.0.0.1:${noCapa.port}?tls=none`);
    assert.equal(r.ok, true);
    assert.equal(r.findings[0]?.code, 'CAP_CAPA');
    assert.equal(r.findings[0]?.level, 'warn');

    const noUidl = await standIn(pop3Server({ capa: ['TOP', 'USER'] }));
    const warn = await probe(probePop3, `pop3://127.0.0.1:${noUidl.port}?tls=none`);
    assert.equal(warn.ok, true);
    assert.equal(cap(warn, 'UIDL')?.level, 'warn');
    const fail = await probe(
      probePop3,
      `pop3://127.0.0.1:${noUidl.port}?tls=none`,
      {},
      { copiesOverPop3: true },
    );
    assert.equal(fail.ok, false);
    assert.match(
      fail.findings.find((f) => f.level === 'error')?.message ?? '',
      /UIDL: no UIDL: a POP3 copy cannot resume/,
    );
    await noCapa.close();
    await noUidl.close();
  });

  it('reports a -ERR greeting as a refusal', async () => {
    const s = await standIn(async (c) => c.send('-ERR [SYS/TEMP] too busy\r\n'));
    const r = await probe(probePop3, `pop3://127.0.0.1:${s.port}?tls=none`);
    assert.equal(r.error?.code, 'EREFUSED');
    await s.close();
  });
});

describe('SMTP / LMTP probe', () => {
  it('reads a multi-line greeting, EHLO, STARTTLS and EHLO again', async () => {
    const s = await standIn(smtpServer({}));
    const r = await probe(probeSmtp, `submission://127.0.0.1:${s.port}`, {}, { submission: true });
    assert.equal(r.ok, true, JSON.stringify(r.findings));
    assert.equal(r.greeting, '220 stand-in ESMTP / second line');
    assert.equal(r.tls?.mode, 'starttls');
    assert.equal(cap(r, 'SIZE')?.value, '1000');
    assert.equal(cap(r, 'AUTH')?.value, 'PLAIN LOGIN');
    assert.equal(cap(r, 'STARTTLS')?.present, true);
    assert.deepEqual(
      s.received.map((l) => l.split(' ')[0]),
      ['EHLO', 'STARTTLS', 'EHLO', 'QUIT'],
    );
    await s.close();
  });

  it('refuses a server without STARTTLS', async () => {
    const s = await standIn(smtpServer({ ext: ['SIZE 0', '8BITMIME'] }));
    const r = await probe(probeSmtp, `smtp://127.0.0.1:${s.port}`);
    assert.equal(r.error?.code, 'ENOSTARTTLS');
    await s.close();
  });

  it('refuses bytes buffered behind the 220 to STARTTLS', async () => {
    const s = await standIn(smtpServer({ starttlsReply: '220 go ahead\r\n250 injected\r\n' }));
    const r = await probe(probeSmtp, `smtp://127.0.0.1:${s.port}`);
    assert.equal(r.error?.code, 'ESTARTTLS_INJECTION');
    await s.close();
  });

  it('reports a 554 greeting, an IMAP greeting, and a refused LHLO', async () => {
    const blocked = await standIn(smtpServer({ greeting: '554 5.7.1 go away\r\n' }));
    assert.equal(
      (await probe(probeSmtp, `smtp://127.0.0.1:${blocked.port}?tls=none`)).error?.code,
      'EREFUSED',
    );
    const imap = await standIn(async (c) => c.send('* OK IMAP ready\r\n'));
    const wrong = await probe(probeSmtp, `smtp://127.0.0.1:${imap.port}?tls=none`);
    assert.equal(wrong.error?.code, 'EPROTOCOL');
    assert.match(wrong.error?.hint ?? '', /looks like IMAP/);
    const noLhlo = await standIn(smtpServer({ ehlo: '500 5.5.1 unknown command\r\n' }));
    const lmtp = await probe(
      probeSmtp,
      `lmtp://127.0.0.1:${noLhlo.port}`,
      {},
      { lmtp: true, side: 'destination' },
    );
    assert.equal(lmtp.error?.code, 'ELHLO');
    await blocked.close();
    await imap.close();
    await noLhlo.close();
  });

  it('falls back to HELO for an old server and warns', async () => {
    const s = await standIn(smtpServer({ ehlo: '502 5.5.2 EHLO not implemented\r\n' }));
    const r = await probe(probeSmtp, `smtp://127.0.0.1:${s.port}?tls=none`);
    assert.equal(r.ok, true);
    assert.equal(r.findings[0]?.code, 'CAP_EHLO');
    assert.equal(r.findings[0]?.level, 'warn');
    await s.close();
  });

  it('fails a submission server without AUTH PLAIN or LOGIN', async () => {
    const s = await standIn(smtpServer({ ext: ['STARTTLS', 'AUTH CRAM-MD5'] }));
    const r = await probe(probeSmtp, `submission://127.0.0.1:${s.port}`, {}, { submission: true });
    assert.equal(r.ok, false);
    assert.match(
      r.findings.find((f) => f.level === 'error')?.message ?? '',
      /AUTH: no AUTH PLAIN or LOGIN/,
    );
    await s.close();
  });
});
