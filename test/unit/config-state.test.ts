/** The `state` setting: a JSON file or a postgresql:// URL, its password, the state folder. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { effectiveConfig, HIDDEN } from '../../src/core/config/check.js';
import { stateConnectionProblem } from '../../src/core/config/state-check.js';
import { controlSocketPath } from '../../src/core/control/proxy-or-store.js';
import { pgConnectionString } from '../../src/core/state/open-store.js';
import { parseMinimal, refusal } from './config-fixtures.js';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'ap-config-state-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const parse = (patch: string, env: NodeJS.ProcessEnv = {}) =>
  parseMinimal(patch, { env, file: join(dir, 'autoport.yaml') });
const problems = (patch: string, env: NodeJS.ProcessEnv = {}) =>
  refusal(patch, { env, file: join(dir, 'autoport.yaml') });

describe('the state setting', () => {
  it('a JSON file: the state folder is its folder unless stateDir says otherwise', () => {
    const c = parse('state: data/s.json\n');
    assert.equal(c.state, join(dir, 'data/s.json'));
    assert.equal(c.stateDir, join(dir, 'data'));
    assert.equal(c.logDir, join(dir, 'data'));
    assert.equal(controlSocketPath(c), join(dir, 'data', 'autoport.sock'));
    const moved = parse('state: data/s.json\nstateDir: /var/lib/autoport\n');
    assert.equal(moved.stateDir, '/var/lib/autoport');
    assert.equal(moved.logDir, '/var/lib/autoport');
    assert.equal(moved.control?.socket, '/var/lib/autoport/autoport.sock');
  });

  it('a PostgreSQL URL: password from the environment or a file, never shown', () => {
    const c = parse(
      'state: postgresql://autoport@db.example.org:5432/autoport\nstatePasswordEnv: PGPASS\n',
      { PGPASS: 'p@ss/word' },
    );
    assert.equal(c.state, 'postgresql://autoport@db.example.org:5432/autoport');
    assert.equal(c.statePassword, 'p@ss/word');
    assert.equal(c.stateDir, dir, 'the config folder by default');
    const url = new URL(pgConnectionString(c));
    assert.equal(decodeURIComponent(url.password), 'p@ss/word');
    const shown = JSON.stringify(effectiveConfig(c));
    assert.ok(!shown.includes('p@ss'), shown);
    assert.equal((effectiveConfig(c) as { statePassword?: string }).statePassword, HIDDEN);

    const file = join(dir, 'pg.pass');
    writeFileSync(file, 'from-file\n', { mode: 0o600 });
    const f = parse(
      `state: postgres://autoport@127.0.0.1/autoport\nstatePasswordFile: ${file}\nstateDir: st\n`,
    );
    assert.equal(f.statePassword, 'from-file');
    assert.equal(f.stateDir, join(dir, 'st'));
  });

  it('refuses a password in the URL without repeating it, and a password for a JSON file', () => {
    const lines = problems('state: postgresql://autoport:secret@db/autoport\n');
    assert.match(lines, /state.*carries a password.*statePasswordFile or statePasswordEnv/);
    assert.ok(!lines.includes('secret'), lines);
    assert.match(problems('state: postgresql://db\n'), /needs a host and a database/);
    assert.match(
      problems('statePasswordEnv: X\n', { X: 'y' }),
      /statePasswordEnv.*only for a postgresql:\/\/ state/,
    );
    assert.match(
      problems('state: postgresql://a@db/x\nstatePasswordEnv: NOPE\n'),
      /statePasswordEnv.*NOPE is not set/,
    );
  });

  it('config check --connect-state: an unreachable database says what to try', async () => {
    const c = parse('state: postgresql://autoport@127.0.0.1:1/autoport\n');
    const problem = await stateConnectionProblem(c);
    assert.ok(problem);
    assert.equal(problem.path, 'state');
    assert.match(problem.problem, /cannot reach the PostgreSQL state \(ECONNREFUSED\)/);
    assert.match(problem.problem, /check the host and port/);
    assert.equal(
      await stateConnectionProblem(parse('')),
      undefined,
      'a JSON state: nothing to reach',
    );
  });
});

describe('the node setting (several gateways on one PostgreSQL)', () => {
  it('defaults: the host name, a heartbeat every 2 s, a 15 s lease', () => {
    assert.deepEqual(parse('').node, { heartbeatSeconds: 2, leaseSeconds: 15 });
    assert.deepEqual(
      parse('node: { name: gw-2.east, heartbeatSeconds: 1, leaseSeconds: 5 }\n').node,
      {
        name: 'gw-2.east',
        heartbeatSeconds: 1,
        leaseSeconds: 5,
      },
    );
  });

  it('refuses a lease shorter than two heartbeats, a name with spaces, unknown keys', () => {
    assert.match(problems('node: { heartbeatSeconds: 5, leaseSeconds: 6 }\n'), /twice/);
    assert.match(problems('node: { name: "gw 2" }\n'), /node\.name/);
    assert.match(problems('node: { lease: 5 }\n'), /node/);
  });
});
