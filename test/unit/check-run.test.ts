/** runCheck over several stand-ins, injected probes, the human rendering, and checkLocalTls. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { join } from 'node:path';
import { checkLocalTls, runCheck } from '../../src/core/check/index.js';
import type { Probe } from '../../src/core/check/probe.js';
import { renderCheck } from '../../src/cli/render-check.js';
import { parseConfigText } from '../../src/core/config/load.js';
import { freePort } from '../support/ports.js';
import {
  closeStandIns,
  imapServer,
  loadCerts,
  smtpServer,
  standIn,
  type Certs,
} from './check-standin.js';

let certs: Certs;
before(async () => {
  certs = await loadCerts();
});
after(closeStandIns);

describe('runCheck', () => {
  it('probes every configured endpoint at once and fails when one fails', async () => {
    const imap = await standIn(imapServer({ pre: 'IMAP4rev1 AUTH=PLAIN' }));
    const lmtp = await standIn(smtpServer({ ext: ['8BITMIME', 'PIPELINING'] }));
    const closed = await freePort();
    const config = parseConfigText(
      `source:
  imap: imap://127.0.0.1:${imap.port}?tls=none
  pop3: pop3://127.0.0.1:${closed}?tls=none
destination:
  imap: imap://127.0.0.1:${imap.port}?tls=none
  smtp: lmtp://127.0.0.1:${lmtp.port}
  provision: { kind: none }
domains: [example.org]
tls: { cert: ${certs.tls.certFile}, key: ${certs.tls.keyFile} }
`,
      '/tmp/autoport-check-test.yaml',
      {},
    );
    const r = await runCheck(config, { timeoutMs: 2000 });
    assert.deepEqual(
      r.endpoints.map((e) => [e.role, e.ok]),
      [
        ['source.imap', true],
        ['source.pop3', false],
        ['destination.imap', true],
        ['destination.smtp', true],
      ],
    );
    assert.equal(r.ok, false);
    assert.equal(r.localTls?.ok, true);
    assert.equal(r.configFile, '/tmp/autoport-check-test.yaml');
    const text = renderCheck(r, 100);
    assert.match(text, /^source\.pop3 {2}pop3:\/\/127\.0\.0\.1:\d+\?tls=none {2}FAILED$/m);
    assert.match(
      text,
      /FAIL {2}nothing listens on 127\.0\.0\.1:\d+\n {8}try: is the server running \/ is the port right\?/,
    );
    assert.match(text, /result: 1 of 4 endpoints failed \(source\.pop3\)/);
    await imap.close();
    await lmtp.close();
  });

  it('uses injected probes', async () => {
    const config = parseConfigText(
      'source: { imap: imaps://a.example }\ndestination: { imap: imaps://b.example, provision: { kind: none } }\ndomains: [a.example]\n',
      '/tmp/x.yaml',
      {},
    );
    const seen: string[] = [];
    const fake: Probe = async (t) => {
      seen.push(t.role);
      return {
        role: t.role,
        url: t.endpoint.url,
        protocol: 'imap',
        host: 'x',
        port: 1,
        tlsMode: 'implicit',
        ok: true,
        capabilities: [],
        findings: [],
        transcript: [],
      };
    };
    const r = await runCheck(config, { probes: { imap: fake } });
    assert.deepEqual(seen, ['source.imap', 'destination.imap']);
    assert.equal(r.ok, true);
  });
});

describe('checkLocalTls', () => {
  it('accepts a matching cert and key, and names the problem otherwise', () => {
    const ok = checkLocalTls(certs.tls.certFile, certs.tls.keyFile);
    assert.equal(ok.ok, true);
    assert.deepEqual(ok.altNames, ['127.0.0.1', '0:0:0:0:0:0:0:1', 'localhost']);
    const mismatch = checkLocalTls(certs.tls.certFile, join(certs.tls.dir, 'ca.key'));
    assert.equal(mismatch.findings[0]?.code, 'ETLSKEY');
    const missing = checkLocalTls('/nonexistent/cert.pem', certs.tls.keyFile);
    assert.match(
      missing.findings[0]?.message ?? '',
      /cannot read tls\.cert \/nonexistent\/cert\.pem \(ENOENT\)/,
    );
    const expired = checkLocalTls(certs.tls.certFile, certs.tls.keyFile, new Date('2100-01-01'));
    assert.match(expired.findings[0]?.message ?? '', /certificate expired on/);
  });
});
