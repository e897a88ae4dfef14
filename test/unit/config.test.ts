/** Config loading and validation: every problem names key, value and what is wrong. */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  ConfigError,
  closestKey,
  loadConfig,
  parseConfigText,
  renderTemplate,
  resolveConfigPath,
  type Config,
} from '../../src/core/config/index.js';
import { OperatorError } from '../../src/core/errors.js';
import { MINIMAL_CONFIG as MINIMAL } from './config-fixtures.js';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'ap-config-test-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const file = join(dir, name);
  mkdirSync(join(file, '..'), { recursive: true });
  writeFileSync(file, text);
  return file;
}

/** The ConfigError lines for a config text (fails the test when it loads). */
function problems(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfigText(text, join(dir, 'autoport.yaml'), env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.equal(err.code, 'ECONFIG');
    assert.match(err.hint, /autoport check/);
    return err.lines;
  }
  return assert.fail('config loaded, expected a ConfigError');
}

/** MINIMAL with `patch` lines appended (later keys of the same name are YAML errors, so add only new ones). */
function minimal(patch = ''): string {
  return `${MINIMAL}${patch}`;
}

describe('loadConfig', () => {
  it('loads the template as written by init, with defaults and absolute paths', () => {
    const file = write(
      'tpl/autoport.yaml',
      renderTemplate({ state: 'state/state.json', keyFile: 'autoport.key' }),
    );
    const c: Config = loadConfig(file, { env: {} });
    assert.equal(c.file, file);
    assert.equal(c.source.imap?.url, 'imap://old-mail.example.org:143?tls=starttls');
    assert.equal(c.source.pop3?.tls, 'implicit');
    assert.equal(c.source.useImap, true);
    assert.equal(c.destination.smtp?.protocol, 'lmtp');
    assert.deepEqual(c.destination.provision, {
      kind: 'passwd-file',
      path: '/etc/dovecot/users',
      scheme: 'SHA512-CRYPT',
    });
    assert.equal(c.destination.master, undefined);
    assert.deepEqual(c.listen.imaps, { host: '0.0.0.0', port: 993 });
    assert.equal(c.listen.submissions, undefined);
    assert.deepEqual(c.domains, ['example.org']);
    assert.equal(c.strategy, 'proxy');
    assert.equal(c.state, join(dir, 'tpl/state/state.json'));
    assert.equal(c.keyFile, join(dir, 'tpl/autoport.key'));
    assert.equal(c.logDir, join(dir, 'tpl/state'));
    assert.deepEqual(c.transfer, { connections: 2, concurrency: 2 });
    assert.deepEqual(c.timeouts, {
      connectMs: 10000,
      greetingMs: 10000,
      commandMs: 60000,
      idleMs: 1800000,
    });
  });

  it('resolves every relative path against the config file folder', () => {
    write('rel/secrets/master.pw', 'pw\n');
    chmodSync(join(dir, 'rel/secrets/master.pw'), 0o600);
    const file = write(
      'rel/autoport.yaml',
      `${MINIMAL.replace('provision: { kind: none }', 'provision: { kind: passwd-file, path: users }\n  master: { user: admin, passwordFile: secrets/master.pw }')}
listen: { imaps: "127.0.0.1:993" }
tls: { cert: tls/cert.pem, key: /abs/key.pem }
state: var/state.json
keyFile: ../keys/k
logDir: logs
`,
    );
    const c = loadConfig(file, { env: {} });
    const base = join(dir, 'rel');
    assert.equal(c.destination.provision.path, join(base, 'users'));
    assert.deepEqual(c.tls, { cert: join(base, 'tls/cert.pem'), key: '/abs/key.pem' });
    assert.equal(c.state, join(base, 'var/state.json'));
    assert.equal(c.keyFile, join(dir, 'keys/k'));
    assert.equal(c.logDir, join(base, 'logs'));
    assert.equal(c.destination.master?.password, 'pw');
    assert.equal(c.warnings, undefined);
  });

  it('finds the file from --config, then AUTOPORT_CONFIG, then /etc/autoport', () => {
    assert.equal(
      resolveConfigPath('x.yaml', { AUTOPORT_CONFIG: '/y.yaml' }),
      join(process.cwd(), 'x.yaml'),
    );
    assert.equal(resolveConfigPath(undefined, { AUTOPORT_CONFIG: '/y.yaml' }), '/y.yaml');
    assert.equal(resolveConfigPath(undefined, {}), '/etc/autoport/autoport.yaml');
    const file = write('env/autoport.yaml', MINIMAL);
    assert.equal(loadConfig(undefined, { env: { AUTOPORT_CONFIG: file } }).file, file);
  });

  it('says what to do when the file is missing', () => {
    const missing = join(dir, 'nope/autoport.yaml');
    assert.throws(
      () => loadConfig(missing, { env: {} }),
      (err: unknown) =>
        err instanceof OperatorError &&
        err.code === 'ENOCONFIG' &&
        err.message === `no config file at ${missing}` &&
        /autoport init --config/.test(err.hint),
    );
  });

  it('names key, value and problem for a bad URL', () => {
    const lines = problems(MINIMAL.replace('imaps://old.example.org', '"imap://x:99999"'));
    assert.deepEqual(lines, ['source.imap: "imap://x:99999" \u2014 port out of range (1-65535)']);
    assert.deepEqual(problems(MINIMAL.replace('imaps://old.example.org', 'pop3://x')), [
      'source.imap: "pop3://x" \u2014 must use imap:// or imaps://, not pop3://',
    ]);
  });

  it('rejects unknown keys and suggests the closest known one', () => {
    const lines = problems(
      `${MINIMAL.replace('domains:', 'domain:')}transfer: { concurency: 3 }\ntimeoutz: {}\n`,
    );
    assert.deepEqual(lines, [
      'domains: (missing) \u2014 is required',
      'transfer.concurency: 3 \u2014 unknown key; did you mean "concurrency"?',
      'domain: ["example.org"] \u2014 unknown key; did you mean "domains"?',
      'timeoutz: {} \u2014 unknown key; did you mean "timeouts"?',
    ]);
    assert.match(
      problems(`${MINIMAL}zzzzzz: 1\n`)[0] ?? '',
      /^zzzzzz: 1 \u2014 unknown key; known keys here: source, destination, listen, tls, domains/,
    );
    assert.equal(closestKey('sorce', ['source', 'destination']), 'source');
    assert.equal(closestKey('qqq', ['source', 'destination']), undefined);
  });

  it('rejects an inline password without echoing it', () => {
    const lines = problems(
      MINIMAL.replace(
        'provision: { kind: none }',
        'provision: { kind: none }\n  master: { user: admin, password: hunter2 }',
      ),
    );
    assert.equal(lines.length, 1);
    assert.match(
      lines[0] ?? '',
      /^destination\.master\.password: \(hidden\) \u2014 passwords are not accepted inline; .*passwordFile/,
    );
    assert.doesNotMatch(lines.join('\n'), /hunter2/);
  });

  it('reads the master password from a file or the environment', () => {
    write('secret/pw', 'from-file\n');
    chmodSync(join(dir, 'secret/pw'), 0o644);
    const fromFile = parseConfigText(
      MINIMAL.replace(
        'provision: { kind: none }',
        'provision: { kind: none }\n  master: { user: admin, passwordFile: secret/pw }',
      ),
      join(dir, 'autoport.yaml'),
      {},
    );
    assert.deepEqual(fromFile.destination.master, {
      user: 'admin',
      password: 'from-file',
      separator: '*',
    });
    assert.match(
      fromFile.warnings?.[0] ?? '',
      /secret\/pw is readable by group or others; chmod 600 it/,
    );

    const fromEnv = parseConfigText(
      MINIMAL.replace(
        'provision: { kind: none }',
        'provision: { kind: none }\n  master: { user: admin, passwordEnv: AP_PW, separator: "%" }',
      ),
      join(dir, 'autoport.yaml'),
      { AP_PW: 'from env ' },
    );
    assert.deepEqual(fromEnv.destination.master, {
      user: 'admin',
      password: 'from env ',
      separator: '%',
    });
  });

  it('reports unreadable, empty and ambiguous secrets', () => {
    write('secret/empty', '\n');
    const m = (s: string): string =>
      MINIMAL.replace(
        'provision: { kind: none }',
        `provision: { kind: none }\n  master: { user: admin, ${s} }`,
      );
    assert.deepEqual(problems(m('passwordFile: secret/missing')), [
      'destination.master.passwordFile: "secret/missing" \u2014 cannot read the password file (no such file)',
    ]);
    assert.deepEqual(problems(m('passwordFile: secret/empty')), [
      'destination.master.passwordFile: "secret/empty" \u2014 the password file is empty',
    ]);
    assert.deepEqual(problems(m('passwordEnv: AP_UNSET')), [
      'destination.master.passwordEnv: "AP_UNSET" \u2014 environment variable AP_UNSET is not set',
    ]);
    assert.deepEqual(
      problems(m('passwordEnv: AP_PW, passwordFile: secret/empty'), { AP_PW: 'x' }),
      ['destination.master.passwordEnv: "AP_PW" \u2014 give passwordFile or passwordEnv, not both'],
    );
    assert.match(
      problems(m('passwordEnv: "not a name"'))[0] ?? '',
      /is not an environment variable name/,
    );
    assert.deepEqual(problems(m('separator: "*"')), [
      'destination.master.passwordFile: (missing) \u2014 needs passwordFile (a file holding the password) or passwordEnv',
    ]);
  });

  it('validates listen addresses', () => {
    const lines = problems(
      minimal(
        'listen: { imap: "0.0.0.0", pop3: "0.0.0.0:99999", smtp: 25, imaps: ":993", pop3s: "[::]:995" }\ntls: { cert: c, key: k }\n',
      ),
    );
    assert.deepEqual(lines, [
      'listen.imap: "0.0.0.0" \u2014 not host:port; write it like 0.0.0.0:143 or [::]:143',
      'listen.imaps: ":993" \u2014 has no host; use 0.0.0.0 for every IPv4 address or [::] for IPv6',
      'listen.pop3: "0.0.0.0:99999" \u2014 port out of range (0-65535)',
      'listen.smtp: 25 \u2014 must be a "host:port" string, e.g. "0.0.0.0:143"',
    ]);
    assert.deepEqual(
      parseConfigText(minimal('listen: { imap: "[::]:143" }\n'), join(dir, 'a.yaml'), {}).listen
        .imap,
      {
        host: '::',
        port: 143,
      },
    );
    assert.deepEqual(
      problems(minimal('listen: { imap: "127.0.0.1:1143", pop3: "127.0.0.1:1143" }\n')),
      ['listen.pop3: "127.0.0.1:1143" \u2014 same address as listen.imap'],
    );
  });

  it('requires tls cert and key for implicit-TLS listeners', () => {
    assert.deepEqual(
      problems(minimal('listen: { imaps: "0.0.0.0:993", pop3s: "0.0.0.0:995" }\n')),
      [
        'tls: (missing) \u2014 listen.imaps, listen.pop3s start TLS at connect and need a certificate: add tls: { cert: cert.pem, key: key.pem }',
      ],
    );
    assert.deepEqual(
      problems(minimal('listen: { imaps: "0.0.0.0:993" }\ntls: { cert: c.pem }\n')),
      ['tls.key: (missing) \u2014 is required'],
    );
    // plain listeners alone need no certificate
    assert.equal(
      parseConfigText(minimal('listen: { imap: "127.0.0.1:143" }\n'), join(dir, 'a.yaml'), {}).tls,
      undefined,
    );
  });

  it('wants a non-empty list of lower-case domains', () => {
    assert.deepEqual(
      problems(MINIMAL.replace('[example.org]', '[Example.org, "bad..x", example.net]')),
      [
        'domains[0]: "Example.org" \u2014 must be lower-case (write example.org)',
        'domains[1]: "bad..x" \u2014 is not a domain name like example.org',
      ],
    );
    assert.deepEqual(problems(MINIMAL.replace('[example.org]', '[]')), [
      'domains: [] \u2014 is empty; list the mail domains AutoPort accepts mail for',
    ]);
    assert.deepEqual(problems(MINIMAL.replace('[example.org]', 'example.org')), [
      'domains: "example.org" \u2014 must be a list of domains: [example.org, example.net]',
    ]);
  });

  it('checks the fields each provision kind needs', () => {
    const p = (s: string): string[] => problems(MINIMAL.replace('{ kind: none }', s));
    assert.deepEqual(p('{ kind: passwd-file }'), [
      'destination.provision.path: (missing) \u2014 is required',
    ]);
    assert.deepEqual(p('{ kind: passwd-file, path: users, scheme: "sha512 crypt" }'), [
      'destination.provision.scheme: "sha512 crypt" \u2014 is not a Dovecot password scheme (e.g. SHA512-CRYPT, ARGON2ID, BLF-CRYPT)',
    ]);
    assert.match(
      p('{ kind: command }')[0] ?? '',
      /^destination\.provision\.command: \(missing\) \u2014 is required for kind: command/,
    );
    assert.deepEqual(p('{ kind: command, command: "mkuser --x" }'), [
      'destination.provision.command: "mkuser --x" \u2014 must be a list: [/usr/local/sbin/mkuser, --quota, 1G]',
    ]);
    assert.deepEqual(p('{ kind: ldap }'), [
      'destination.provision.kind: "ldap" \u2014 must be passwd-file, command or none',
    ]);
    assert.deepEqual(p('{ kind: none, path: x }'), [
      'destination.provision.path: "x" \u2014 unknown key; known keys here: kind',
    ]);
    const ok = parseConfigText(
      MINIMAL.replace(
        '{ kind: none }',
        '{ kind: passwd-file, path: /u, uid: 5000, gid: vmail, home: "/srv/%d/%n" }',
      ),
      join(dir, 'a.yaml'),
      {},
    );
    assert.deepEqual(ok.destination.provision, {
      kind: 'passwd-file',
      path: '/u',
      scheme: 'SHA512-CRYPT',
      uid: '5000',
      gid: 'vmail',
      home: '/srv/%d/%n',
    });
  });

  it('checks rules that span keys', () => {
    assert.deepEqual(problems(MINIMAL.replace('imap: imaps://old.example.org', 'useImap: true')), [
      'source: (no imap, no pop3) \u2014 give source.imap or source.pop3: the server accounts move from',
    ]);
    assert.deepEqual(
      problems(
        MINIMAL.replace(
          'imap: imaps://old.example.org',
          'imap: imaps://old.example.org\n  useImap: false',
        ),
      ),
      ['source.useImap: false \u2014 copying over POP3 needs source.pop3'],
    );
    const lines = problems(minimal('listen: { smtp: "0.0.0.0:25" }\n'));
    assert.deepEqual(
      lines.map((l) => l.split(':')[0]),
      ['destination.smtp', 'source.smtp'],
    );
    const pop3Only = parseConfigText(
      MINIMAL.replace('imap: imaps://old.example.org', 'pop3: pop3s://old.example.org'),
      join(dir, 'a.yaml'),
      {},
    );
    assert.equal(pop3Only.source.useImap, false);
  });

  it('validates types, enums and ranges', () => {
    assert.deepEqual(
      problems(
        minimal(
          'strategy: fast\ntransfer: { connections: "two", concurrency: 0 }\ntimeouts: { connectMs: 1.5 }\n',
        ),
      ),
      [
        'strategy: "fast" \u2014 must be proxy (splice to the source, copy in the background) or immediate',
        'transfer.connections: "two" \u2014 must be a number (IMAP connections per side for one account)',
        'transfer.concurrency: 0 \u2014 must be at least 1 (accounts moved at once)',
        'timeouts.connectMs: 1.5 \u2014 must be a whole number',
      ],
    );
    assert.deepEqual(problems(MINIMAL.replace('imap: imaps://new.example.org', 'imap: 143')), [
      'destination.imap: 143 \u2014 must be a URL string (imap://host:143?tls=starttls or imaps://host:993)',
    ]);
    assert.deepEqual(problems(minimal('source: 1\n').replace(/^source:\n {2}imap: .*\n/m, '')), [
      'source: 1 \u2014 must be a mapping (key: value)',
    ]);
  });

  it('reports YAML syntax errors with line and column, and a non-mapping document', () => {
    assert.deepEqual(problems('source:\n  imap: x\nsource: y\n'), [
      'line 3, column 1: Map keys must be unique (YAML syntax)',
    ]);
    assert.deepEqual(problems('source:\n\timap: x\n'), [
      'line 2, column 1: Tabs are not allowed as indentation (YAML syntax)',
    ]);
    assert.match(
      problems('- a\n')[0] ?? '',
      /^\(top level\): \["a"\] \u2014 the config must be a YAML mapping/,
    );
    assert.match(
      problems('')[0] ?? '',
      /^\(top level\): null \u2014 the config must be a YAML mapping/,
    );
  });

  it('lists every problem at once in the message', () => {
    try {
      parseConfigText(`${MINIMAL.replace('[example.org]', '[]')}strategy: x\n`, '/etc/x.yaml', {});
      assert.fail('loaded');
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.problems.length, 2);
      assert.match(
        err.message,
        /^config \/etc\/x\.yaml has 2 problems:\n {2}domains: \[\] .*\n {2}strategy: "x" /,
      );
      assert.equal(err.hint, 'fix them in /etc/x.yaml, then run `autoport check`');
      assert.deepEqual(Object.keys(err.toJSON()), ['code', 'message', 'hint', 'problems']);
    }
  });
});
