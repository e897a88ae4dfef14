/**
 * The package an admin installs: `npm pack` gives a tarball that `npm install -g` installs
 * without the repository, and the installed `autoport` answers --help, `help <command>` and
 * `config check`. The tarball is packed from the built tree (`npm test` builds first; the
 * `prepack` script builds when an admin packs a clean clone).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ensureBuilt, ROOT, writeOfflineConfig } from '../support/cli.js';

const run = promisify(execFile);

describe('npm pack + npm install -g', { timeout: 300_000 }, () => {
  let dir: string;
  let tarball: string;
  let autoport: string;

  before(async () => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'ap-package-'));
    await run('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', dir], {
      cwd: ROOT,
    });
    const tgz = readdirSync(dir).find((f) => /^autoport-.*\.tgz$/.test(f));
    assert.ok(tgz, 'npm pack wrote no autoport-*.tgz');
    tarball = join(dir, tgz);
    const prefix = join(dir, 'prefix');
    // From a folder outside the repository, as an admin's machine would be.
    await run(
      'npm',
      ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', '--silent', tarball],
      { cwd: dir, maxBuffer: 16 << 20 },
    );
    autoport = join(prefix, 'bin', 'autoport');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('ships the program, the systemd unit and no tests', async () => {
    const { stdout } = await run('tar', ['-tzf', tarball]);
    const files = stdout.split('\n');
    for (const f of [
      'package/bin/run.js',
      'package/dist/commands/proxy.js',
      // oclif reads it instead of importing every command at each start
      'package/oclif.manifest.json',
      'package/dist/commands/config/check.js',
      'package/dist/core/config/template.js',
      'package/deploy/autoport.service',
      'package/README.md',
    ]) {
      assert.ok(files.includes(f), `${f} is not in the tarball`);
    }
    assert.deepEqual(
      files.filter((f) => /^package\/(test|src|bench|scripts)\//.test(f)),
      [],
    );
  });

  it('installs only runtime dependencies', () => {
    const installed = join(dir, 'prefix', 'lib', 'node_modules', 'autoport');
    const pkg = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    // nodemailer still arrives as smtp-server's own dependency; it is not ours at run time.
    for (const testOnly of ['nodemailer', 'node-pop3', 'fast-check']) {
      assert.equal(pkg.dependencies[testOnly], undefined, `${testOnly} is a runtime dependency`);
    }
    for (const devOnly of ['node-pop3', 'typescript', 'tsx', 'fast-check', 'eslint']) {
      assert.equal(
        existsSync(join(installed, 'node_modules', devOnly)),
        false,
        `${devOnly} installed`,
      );
    }
  });

  it('answers --help, help <command> and config check', async () => {
    const opts = { cwd: dir, env: { ...process.env, AUTOPORT_CONFIG: '' } };
    const help = await run(autoport, ['--help'], opts);
    assert.match(help.stdout, /^ {2}proxy\s+Run the gateway/m);
    assert.match(help.stdout, /^ {2}config\s+Validate and show the configuration/m);
    const migrate = await run(autoport, ['help', 'migrate'], opts);
    assert.match(migrate.stdout, /USAGE\n {2}\$ autoport migrate/);
    const cfgDir = mkdtempSync(join(dir, 'cfg-'));
    await run(autoport, ['init', '--config', join(cfgDir, 'autoport.yaml')], opts);
    const file = writeOfflineConfig(cfgDir);
    const check = await run(autoport, ['config', 'check', '--config', file], opts);
    assert.match(check.stdout, /^ok: /);
    const broken = writeOfflineConfig(mkdtempSync(join(dir, 'broken-')), ['strategy: never']);
    const bad = await run(autoport, ['config', 'check', '--config', broken], opts).then(
      () => assert.fail('config check passed a broken config'),
      (e: { code: number; stdout: string }) => e,
    );
    assert.equal(bad.code, 1);
    assert.match(bad.stdout, /problem: strategy/);
  });
});
