/**
 * deploy/autoport.service as shipped: `systemd-analyze verify` finds nothing to say about it
 * on this systemd, with `autoport` where `npm install -g` puts it (/usr/bin or
 * /usr/local/bin), and it grants what the gateway needs. No running systemd is needed:
 * --root points verify at a tree with the fake command, kill and systemd's own units.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { tempDir } from '../support/state-helpers.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const UNIT = join(ROOT, 'deploy/autoport.service');
const ANALYZE = '/usr/bin/systemd-analyze';

/** A root for `systemd-analyze verify --root`, with autoport in `bin` (or nowhere). */
function fakeRoot(t: TestContext, bin: string | undefined): string {
  const root = tempDir(t, 'autoport-unit-');
  for (const d of ['usr/bin', 'usr/local/bin', 'usr/lib/systemd', 'etc/systemd/system'])
    mkdirSync(join(root, d), { recursive: true });
  // Debian 12 is /usr-merged: /bin/kill is /usr/bin/kill
  symlinkSync('usr/bin', join(root, 'bin'));
  // ExecReload's kill: only its being executable matters to verify (and procps, which
  // ships /usr/bin/kill, is not on every machine)
  writeFileSync(join(root, 'usr/bin/kill'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  // sysinit.target, network-online.target, ...: what the unit's dependencies name
  cpSync('/usr/lib/systemd/system', join(root, 'usr/lib/systemd/system'), {
    recursive: true,
    verbatimSymlinks: true,
  });
  if (bin) {
    writeFileSync(join(root, bin, 'autoport'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  }
  copyFileSync(UNIT, join(root, 'etc/systemd/system/autoport.service'));
  return root;
}

function verify(root: string): { status: number | null; output: string } {
  if (!existsSync(ANALYZE))
    throw new Error(`${ANALYZE} is missing: apt-get install systemd (scripts/ensure-deps.js)`);
  const r = spawnSync(ANALYZE, ['verify', `--root=${root}`, 'autoport.service'], {
    encoding: 'utf8',
  });
  return { status: r.status, output: `${r.stdout}${r.stderr}`.trim() };
}

/** Key=value lines of the unit (comments out), every value of a repeated key. */
function settings(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of readFileSync(UNIT, 'utf8').split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m) out.set(m[1]!, [...(out.get(m[1]!) ?? []), m[2]!]);
  }
  return out;
}

describe('deploy/autoport.service', () => {
  for (const bin of ['usr/bin', 'usr/local/bin']) {
    it(`systemd-analyze verify is clean with autoport in /${bin}`, (t) => {
      const r = verify(fakeRoot(t, bin));
      assert.equal(r.output, '', r.output);
      assert.equal(r.status, 0);
    });
  }

  it('verify does complain when autoport is not installed (the check can fail)', (t) => {
    const r = verify(fakeRoot(t, undefined));
    assert.match(r.output, /Command autoport is not executable/);
  });

  it('grants what the gateway needs, and says where the control socket goes', () => {
    const s = settings();
    const one = (k: string): string | undefined => s.get(k)?.at(-1);
    assert.match(one('ExecStart') ?? '', /^autoport proxy\b/, 'a bare name, found in PATH');
    assert.equal(one('Type'), 'notify');
    assert.equal(one('NotifyAccess'), 'all', 'systemd-notify is a child of the gateway');
    for (const k of [
      'StateDirectory',
      'RuntimeDirectory',
      'LogsDirectory',
      'ConfigurationDirectory',
    ])
      assert.equal(one(k), 'autoport', k);
    for (const k of ['AmbientCapabilities', 'CapabilityBoundingSet']) {
      const caps = (one(k) ?? '').split(/\s+/);
      assert.ok(caps.includes('CAP_NET_BIND_SERVICE'), k);
      assert.ok(caps.includes('CAP_CHOWN'), `${k}: the passwd-file keeps its owner`);
    }
    assert.equal(one('ProtectSystem'), 'strict');
    assert.ok(s.get('ReadWritePaths')?.length, 'the passwd-file folder is writable');
    const text = readFileSync(UNIT, 'utf8');
    assert.match(text, /socket: \/run\/autoport\/autoport\.sock/);
  });

  it('Documentation= names the README where npm install -g puts it', () => {
    const docs = (settings().get('Documentation')?.[0] ?? '').split(/\s+/);
    assert.deepEqual(docs, [
      'file:/usr/lib/node_modules/autoport/README.md',
      'file:/usr/local/lib/node_modules/autoport/README.md',
    ]);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      name: string;
      files: string[];
    };
    assert.equal(pkg.name, 'autoport');
    assert.ok(pkg.files.includes('README.md'), 'the README is in the package');
  });
});
