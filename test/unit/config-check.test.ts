/** `config check` and `config show`: validation on disk without connecting; secrets hidden. */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { checkConfig, effectiveConfig, HIDDEN } from '../../src/core/config/check.js';
import { generateKeyFile } from '../../src/core/state/crypto.js';
import { testTls, type TestTls } from '../support/tls.js';

let dir: string;
let tls: TestTls;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ap-config-check-'));
  tls = await testTls();
  await generateKeyFile(join(dir, 'autoport.key'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function config(name: string, extra: string[] = [], keyFile = 'autoport.key'): string {
  const file = join(dir, name);
  writeFileSync(
    file,
    [
      'source:',
      '  imap: imap://127.0.0.1:1143',
      'destination:',
      '  imap: imaps://new.example.org',
      '  provision: { kind: none }',
      '  master: { user: admin, passwordEnv: AP_TEST_MASTER }',
      'domains: [example.org]',
      'listen: { imaps: "127.0.0.1:10993" }',
      `tls: { cert: ${tls.certFile}, key: ${tls.keyFile} }`,
      'state: state/state.json',
      `keyFile: ${keyFile}`,
      ...extra,
      '',
    ].join('\n'),
  );
  return file;
}

const env = { AP_TEST_MASTER: 's3cret-master' };

describe('config check', () => {
  it('passes a valid config whose files are in place', () => {
    const r = checkConfig(config('ok.yaml'), env);
    assert.deepEqual(r.problems, []);
    assert.equal(r.ok, true);
  });

  it('reports a schema problem without throwing', () => {
    const r = checkConfig(config('bad.yaml', ['strategy: sometimes']), env);
    assert.equal(r.ok, false);
    assert.deepEqual(
      r.problems.map((p) => p.path),
      ['strategy'],
    );
  });

  it('names the missing key file, an exposed key file and an unusable certificate', () => {
    const missing = checkConfig(config('nokey.yaml', [], 'none.key'), env);
    assert.match(
      missing.problems.map((p) => `${p.path}: ${p.problem}`).join('\n'),
      /^keyFile: .*not found/m,
    );
    const exposed = join(dir, 'exposed.key');
    writeFileSync(exposed, `k1:${Buffer.alloc(32, 1).toString('base64')}\n`);
    chmodSync(exposed, 0o644);
    const open = checkConfig(config('exposed.yaml', [], exposed), env);
    assert.match(open.problems[0]?.problem ?? '', /chmod 600/);
    const swapped = join(dir, 'swapped.yaml');
    writeFileSync(
      swapped,
      [
        'source: { imap: "imap://127.0.0.1:1143" }',
        'destination: { imap: "imaps://new.example.org", provision: { kind: none } }',
        'domains: [example.org]',
        'listen: { imaps: "127.0.0.1:10993" }',
        `tls: { cert: ${tls.keyFile}, key: ${tls.certFile} }`,
        'state: state/state.json',
        'keyFile: autoport.key',
        '',
      ].join('\n'),
    );
    const s = checkConfig(swapped, env);
    assert.deepEqual(
      s.problems.map((p) => p.path),
      ['tls'],
    );
    assert.match(s.problems[0]?.problem ?? '', /not a usable certificate and key/);
  });
});

describe('config check under systemd', () => {
  it('leaves a /run folder to RuntimeDirectory= with a warning', () => {
    const socket = `/run/ap-config-check-${process.pid}/autoport.sock`;
    const r = checkConfig(config('run.yaml', [`control: { socket: ${socket} }`]), env);
    assert.deepEqual(r.problems, []);
    assert.match(r.warnings.join('\n'), /RuntimeDirectory= creates it/);
  });
});

describe('config show', () => {
  it('fills in defaults, shows endpoints as URLs and hides secrets', () => {
    const r = checkConfig(config('show.yaml'), env);
    assert.ok(r.config);
    const shown = effectiveConfig(r.config);
    const text = JSON.stringify(shown);
    assert.doesNotMatch(text, /s3cret-master/);
    assert.equal((shown.destination as { master: { password: string } }).master.password, HIDDEN);
    assert.equal((shown.source as { imap: string }).imap, 'imap://127.0.0.1:1143');
    assert.equal(shown.strategy, 'proxy');
    assert.deepEqual(shown.listen, { imaps: '127.0.0.1:10993' });
    assert.equal(shown.state, join(dir, 'state/state.json'));
  });
});
