/**
 * `autoport init` and `autoport check` against the real lab: Dovecot (IMAP, POP3, LMTP, with
 * TLS from the test CA) and Postfix. The end-to-end cases run the built CLI; the rest call
 * runCheck directly.
 */
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCheck } from '../../src/core/check/index.js';
import type { CheckResult, EndpointReport } from '../../src/core/check/types.js';
import { loadConfig } from '../../src/core/config/index.js';
import { ensureBuilt, runCli } from '../support/cli.js';
import { makeTempDir, removeDir, startLab, writeLabConfig, type Lab } from '../support/index.js';

const cli = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  runCli(args, { env: { NODE_EXTRA_CA_CERTS: '', ...env } });

function endpoint(result: CheckResult, role: string): EndpointReport {
  const e = result.endpoints.find((x) => x.role === role);
  assert.ok(e, `no ${role} in ${result.endpoints.map((x) => x.role).join(', ')}`);
  return e;
}

function present(e: EndpointReport, name: string): boolean | null | undefined {
  return e.capabilities.find((c) => c.name === name)?.present;
}

const ALICE = { user: 'alice@example.org', password: 'alice-secret' };

describe('autoport check against real servers', () => {
  let lab: Lab;
  let dir: string;
  let configFile: string;

  before(async () => {
    ensureBuilt();
    lab = await startLab({ tls: true, destinationUsers: [ALICE] });
    dir = makeTempDir('check');
  });

  after(async () => {
    await lab?.stop();
    if (dir) removeDir(dir);
  });

  /** the lab's endpoints with TLS: STARTTLS on the plain ports, implicit TLS on the others */
  function tlsOverrides(): Record<string, unknown> {
    const s = lab.source;
    const d = lab.destination;
    return {
      source: {
        imap: `imap://127.0.0.1:${s.ports.imap}?tls=starttls`,
        pop3: `pop3s://127.0.0.1:${s.ports.pop3s}`,
        smtp: lab.mta.url,
      },
      destination: {
        imap: `imaps://127.0.0.1:${d.ports.imaps}`,
        smtp: d.urls.lmtp,
      },
    };
  }

  it('init writes a config and a key; check --json reports TLS, greetings and capabilities', async () => {
    configFile = join(dir, 'autoport.yaml');
    const init = await cli(['init', '--config', configFile, '--json']);
    assert.equal(init.code, 0, init.stderr);
    const made = JSON.parse(init.stdout) as {
      configFile: string;
      keyFile: string;
      keyCreated: boolean;
    };
    assert.equal(made.configFile, configFile);
    assert.equal(made.keyCreated, true);
    assert.equal(statSync(made.keyFile).mode & 0o777, 0o600);
    assert.match(readFileSync(configFile, 'utf8'), /^# AutoPort configuration/);

    const again = await cli(['init', '--config', configFile]);
    assert.equal(again.code, 1);
    assert.equal(
      again.stderr,
      `error: a config already exists at ${configFile}\n  try: edit it, or run \`autoport init --force\` to replace it with the template (the key file is kept)\n`,
    );

    // Point the config at the lab (the key file from init stays: same name, same folder).
    writeLabConfig(lab, dir, tlsOverrides());
    const run = await cli(['check', '--config', configFile, '--json'], {
      NODE_EXTRA_CA_CERTS: lab.source.tls?.caFile,
    });
    assert.equal(run.code, 0, `${run.stderr}\n${run.stdout}`);
    assert.equal(run.stderr, '');
    const result = JSON.parse(run.stdout) as CheckResult;
    assert.equal(result.ok, true);
    assert.equal(result.configFile, configFile);
    assert.deepEqual(
      result.endpoints.map((e) => [e.role, e.ok]),
      [
        ['source.imap', true],
        ['source.pop3', true],
        ['source.smtp', true],
        ['destination.imap', true],
        ['destination.smtp', true],
      ],
    );

    const imap = endpoint(result, 'source.imap');
    assert.match(imap.greeting ?? '', /^\* OK .*Dovecot ready/);
    assert.equal(imap.tls?.mode, 'starttls');
    assert.equal(imap.tls?.verification, 'valid');
    assert.equal(imap.tls?.nameMatches, true);
    assert.match(imap.tls?.protocol ?? '', /^TLSv1\.[23]$/);
    assert.ok(imap.tls?.cipher);
    assert.match(imap.tls?.subject ?? '', /CN=localhost/);
    assert.match(imap.tls?.issuer ?? '', /CN=AutoPort Test CA/);
    assert.ok(Date.parse(imap.tls?.validTo ?? '') > Date.now());
    assert.ok(imap.preTlsCapabilities?.includes('STARTTLS'));
    assert.ok(!imap.rawCapabilities?.includes('STARTTLS'), 'capabilities re-read after TLS');
    for (const name of ['IMAP4rev1', 'STARTTLS', 'AUTH', 'LITERAL+', 'ID']) {
      assert.equal(present(imap, name), true, name);
    }
    // Dovecot lists these only after login; without credentials the check says "unknown".
    for (const name of ['UIDPLUS', 'CONDSTORE', 'SPECIAL-USE'])
      assert.equal(present(imap, name), null, name);
    assert.equal(imap.capabilities.find((c) => c.name === 'AUTH')?.value, 'PLAIN LOGIN');
    assert.ok(imap.transcript.includes('C: A2 STARTTLS'));

    const destImap = endpoint(result, 'destination.imap');
    assert.equal(destImap.tls?.mode, 'implicit');
    assert.equal(destImap.tls?.verification, 'valid');

    const pop3 = endpoint(result, 'source.pop3');
    assert.equal(pop3.tls?.mode, 'implicit');
    assert.match(pop3.greeting ?? '', /^\+OK .*Dovecot ready/);
    for (const name of ['UIDL', 'TOP', 'USER', 'SASL', 'RESP-CODES'])
      assert.equal(present(pop3, name), true, name);

    const mta = endpoint(result, 'source.smtp');
    assert.match(mta.greeting ?? '', /^220 .*ESMTP Postfix/);
    for (const name of ['SIZE', '8BITMIME', 'PIPELINING', 'ENHANCEDSTATUSCODES', 'SMTPUTF8']) {
      assert.equal(present(mta, name), true, name);
    }

    const lmtp = endpoint(result, 'destination.smtp');
    assert.match(lmtp.greeting ?? '', /^220 .*Dovecot ready/);
    assert.ok(
      lmtp.transcript.some((l) => /^C: LHLO /.test(l)),
      'LMTP says LHLO',
    );
    assert.equal(present(lmtp, '8BITMIME'), true);
    assert.equal(present(lmtp, 'PIPELINING'), true);
  });

  it('renders a table on a terminal', async () => {
    const run = await cli(['check', '--config', configFile], {
      NODE_EXTRA_CA_CERTS: lab.source.tls?.caFile,
    });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^source\.imap {2}imap:\/\/127\.0\.0\.1:\d+\?tls=starttls {2}OK$/m);
    assert.match(run.stdout, /^ {2}tls +STARTTLS, TLSv1\.[23], /m);
    assert.match(run.stdout, /^ {2}verification {2}valid$/m);
    assert.match(run.stdout, /^ {4}yes {2}IMAP4rev1 /m);
    assert.match(run.stdout, /^ {4}\? {4}UIDPLUS /m);
    assert.match(run.stdout, /^result: all 5 endpoints OK$/m);
  });

  it('sees the post-login capabilities when given accounts', async () => {
    const config = loadConfig(configFile);
    const result = await runCheck(config, {
      ca: lab.source.tls?.ca,
      credentials: { source: ALICE, destination: ALICE },
    });
    assert.equal(result.ok, true, JSON.stringify(result.endpoints.flatMap((e) => e.findings)));
    for (const role of ['source.imap', 'destination.imap']) {
      const e = endpoint(result, role);
      assert.equal(e.loggedInAs, ALICE.user);
      for (const name of [
        'IMAP4rev1',
        'NAMESPACE',
        'UIDPLUS',
        'CONDSTORE',
        'QRESYNC',
        'SPECIAL-USE',
        'LITERAL+',
        'ID',
      ]) {
        assert.equal(present(e, name), true, `${role} ${name}`);
      }
      assert.ok(
        !e.transcript.join('\n').includes(ALICE.password),
        'password not in the transcript',
      );
    }
    // No APPENDLIMIT configured on this destination: said so, as information.
    assert.equal(present(endpoint(result, 'destination.imap'), 'APPENDLIMIT'), false);
  });

  it('fails a certificate from a CA it does not trust, and explains a TLS/plain mismatch', async () => {
    const config = loadConfig(configFile);
    const untrusted = await runCheck(config, { timeoutMs: 5000 });
    assert.equal(untrusted.ok, false);
    const e = endpoint(untrusted, 'source.imap');
    assert.equal(e.tls?.verification, 'untrusted');
    assert.match(
      e.findings[0]?.message ?? '',
      /certificate not accepted: issued by CN=AutoPort Test CA, a CA this machine does not trust/,
    );
    assert.equal(endpoint(untrusted, 'source.smtp').ok, true, 'plain loopback MTA unaffected');

    const plainPort = lab.source.ports.imap;
    const mismatch = await runCheck(
      {
        ...config,
        source: {
          ...config.source,
          imap: {
            ...config.source.imap!,
            url: `imaps://127.0.0.1:${plainPort}`,
            port: plainPort,
            tls: 'implicit',
          },
        },
      },
      { ca: lab.source.tls?.ca, timeoutMs: 5000 },
    );
    assert.deepEqual(endpoint(mismatch, 'source.imap').error, {
      code: 'ETLS',
      message: 'TLS handshake failed: the server did not answer TLS',
      hint: 'is this port plain? try tls=starttls',
    });
  });

  it('gives a one-line cause for a bad config', async () => {
    const bad = join(dir, 'bad.yaml');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(
      bad,
      readFileSync(configFile, 'utf8').replace(
        /^(\s+imap: )imap:\/\/127\.0\.0\.1:\d+/m,
        '$1imap://127.0.0.1:99999',
      ),
    );
    const run = await cli(['check', '--config', bad]);
    assert.equal(run.code, 1);
    assert.equal(run.stdout, '');
    assert.match(
      run.stderr,
      /^error: config .*bad\.yaml has a problem:\n {2}source\.imap: "imap:\/\/127\.0\.0\.1:99999\?tls=starttls" \u2014 port out of range \(1-65535\)\n {2}try: fix it in .*bad\.yaml, then run `autoport check`\n$/,
    );
    assert.doesNotMatch(run.stderr, /at .*\.js:\d+/, 'no stack trace');
  });

  it('names the stopped server, and what to try', async () => {
    await lab.destination.stop();
    const run = await cli(['check', '--config', configFile, '--json', '--timeout', '5000'], {
      NODE_EXTRA_CA_CERTS: lab.source.tls?.caFile,
    });
    assert.equal(run.code, 1);
    const result = JSON.parse(run.stdout) as CheckResult;
    assert.equal(result.ok, false);
    assert.equal(endpoint(result, 'source.imap').ok, true);
    const d = endpoint(result, 'destination.imap');
    assert.deepEqual(d.error, {
      code: 'ECONNREFUSED',
      message: `nothing listens on 127.0.0.1:${lab.destination.ports.imaps}`,
      hint: 'is the server running / is the port right?',
    });
    assert.equal(endpoint(result, 'destination.smtp').error?.code, 'ECONNREFUSED');
    assert.equal(
      run.stderr,
      `error: destination.imap imaps://127.0.0.1:${lab.destination.ports.imaps}: nothing listens on 127.0.0.1:${lab.destination.ports.imaps}\n  try: is the server running / is the port right?\n`,
    );
  });
});
