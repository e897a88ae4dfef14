/** `autoport init` in core: template, key file, no overwrite without --force, key kept. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { initConfig, loadConfig, renderTemplate } from '../../src/core/config/index.js';
import { OperatorError } from '../../src/core/errors.js';
import { generateKeyFile } from '../../src/core/state/crypto.js';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'ap-init-test-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('initConfig', () => {
  it('writes the template and a 0600 key, refuses to overwrite, keeps the key with force', async () => {
    const configPath = join(dir, 'init/sub/autoport.yaml');
    const r = await initConfig({ configPath, generateKey: (p) => generateKeyFile(p) });
    assert.equal(r.configFile, configPath);
    assert.equal(r.keyFile, join(dir, 'init/sub/autoport.key'));
    assert.equal(r.keyCreated, true);
    assert.equal(r.overwritten, false);
    assert.equal(statSync(r.keyFile).mode & 0o777, 0o600);
    assert.match(r.nextSteps.join('\n'), /autoport check --config /);
    const text = readFileSync(configPath, 'utf8');
    assert.match(text, /^# AutoPort configuration/);
    for (const key of [
      'source:',
      'destination:',
      'provision:',
      'master:',
      'listen:',
      'tls:',
      'domains:',
      'strategy:',
      'state:',
      'keyFile:',
      'logDir:',
      'transfer:',
      'timeouts:',
    ]) {
      assert.ok(text.includes(key), `template mentions ${key}`);
    }
    assert.match(text, /^state: state\/state\.json$/m);
    const c = loadConfig(configPath, { env: {} });
    assert.equal(c.keyFile, r.keyFile);

    const key = readFileSync(r.keyFile, 'utf8');
    await assert.rejects(
      initConfig({ configPath, generateKey: () => assert.fail('must not make a key') }),
      (err: unknown) =>
        err instanceof OperatorError && err.code === 'EEXIST' && /--force/.test(err.hint),
    );
    writeFileSync(configPath, 'edited: true\n');
    const again = await initConfig({
      configPath,
      force: true,
      generateKey: () => assert.fail('must keep the key'),
    });
    assert.equal(again.overwritten, true);
    assert.equal(again.keyCreated, false);
    assert.equal(readFileSync(r.keyFile, 'utf8'), key);
    assert.match(readFileSync(configPath, 'utf8'), /^# AutoPort configuration/);
  });

  it('puts state under /var/lib for a config in /etc/autoport', () => {
    // renderTemplate is what init writes; the path choice is checked without touching /etc.
    assert.match(
      renderTemplate({ state: '/var/lib/autoport/state.json', keyFile: 'autoport.key' }),
      /^state: \/var\/lib\/autoport\/state\.json$/m,
    );
  });

  it('turns an unwritable place into an operator error', async () => {
    const blocker = join(dir, 'blocker');
    writeFileSync(blocker, 'a file, not a folder');
    await assert.rejects(
      initConfig({ configPath: join(blocker, 'autoport.yaml'), generateKey: () => undefined }),
      (err: unknown) =>
        err instanceof OperatorError && err.code === 'EWRITE' && /--config/.test(err.hint),
    );
  });
});
