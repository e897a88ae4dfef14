/**
 * Readiness for systemd (Type=notify): `systemd-notify --ready` runs once the listeners
 * are open, only when systemd asked for it (NOTIFY_SOCKET). A fake systemd-notify on PATH
 * records its arguments.
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EventEmitter } from 'node:events';
import { describe, it, type TestContext } from 'node:test';
import { runProxyService } from '../../src/core/gateway/service.js';
import { notifyReady } from '../../src/core/gateway/readiness.js';
import { createLogger, memorySink } from '../../src/core/log/index.js';
import { generateKeyFile } from '../../src/core/state/crypto.js';
import { writeOfflineConfig } from '../support/cli.js';
import { defer, tempDir } from '../support/state-helpers.js';

/** A folder with a fake systemd-notify that appends its argv (NUL-separated) to `calls`. */
function fakeNotify(t: TestContext, exitCode = 0): { dir: string; calls: () => string[][] } {
  const dir = tempDir(t, 'autoport-notify-');
  const calls = join(dir, 'calls');
  const script = join(dir, 'systemd-notify');
  writeFileSync(
    script,
    [
      '#!/bin/sh',
      `for a in "$0" "NOTIFY_SOCKET=$NOTIFY_SOCKET" "$@"; do printf '%s\\0' "$a"; done >> '${calls}'`,
      `printf '\\n' >> '${calls}'`,
      exitCode ? `echo 'Failed to notify init system: Permission denied' >&2` : '',
      `exit ${exitCode}`,
      '',
    ].join('\n'),
  );
  chmodSync(script, 0o755);
  return {
    dir,
    calls: () =>
      existsSync(calls)
        ? readFileSync(calls, 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((l) => l.split('\0').filter(Boolean).slice(1))
        : [],
  };
}

describe('readiness for systemd', () => {
  it('runs systemd-notify --ready with the gateway as main PID when NOTIFY_SOCKET is set', async (t) => {
    const fake = fakeNotify(t);
    const sink = memorySink();
    const result = await notifyReady({
      logger: createLogger({ sink, format: 'json' }),
      status: 'listening: imap 127.0.0.1:1143',
      env: { PATH: fake.dir, NOTIFY_SOCKET: '/run/systemd/notify' },
      pid: 4242,
    });
    assert.equal(result, 'notified');
    assert.deepEqual(fake.calls(), [
      [
        'NOTIFY_SOCKET=/run/systemd/notify',
        '--ready',
        '--pid=4242',
        '--status=listening: imap 127.0.0.1:1143',
      ],
    ]);
    assert.equal(sink.text(), '', 'nothing to say when it worked');
  });

  it('does nothing without NOTIFY_SOCKET (a terminal, Type=simple)', async (t) => {
    const fake = fakeNotify(t);
    for (const NOTIFY_SOCKET of [undefined, '']) {
      const result = await notifyReady({
        logger: createLogger({ sink: memorySink() }),
        status: 'x',
        env: { PATH: fake.dir, NOTIFY_SOCKET },
      });
      assert.equal(result, 'not-asked');
    }
    assert.deepEqual(fake.calls(), []);
  });

  it('a failing or missing systemd-notify is an error line, not a crash', async (t) => {
    const failing = fakeNotify(t, 1);
    const sink = memorySink();
    const logger = createLogger({ sink, format: 'json' });
    const env = { NOTIFY_SOCKET: '/run/systemd/notify' };
    assert.equal(
      await notifyReady({ logger, status: 'x', env: { ...env, PATH: failing.dir } }),
      'failed',
    );
    const empty = tempDir(t, 'autoport-nopath-');
    assert.equal(
      await notifyReady({ logger, status: 'x', env: { ...env, PATH: empty } }),
      'failed',
    );
    const lines = sink.lines.map((l) => JSON.parse(l));
    assert.deepEqual(
      lines.map((l) => [l.level, l.msg]),
      [
        ['error', 'could not tell systemd that the gateway is ready'],
        ['error', 'could not tell systemd that the gateway is ready'],
      ],
    );
    assert.match(lines[0].detail, /exited with 1: Failed to notify init system: Permission denied/);
    assert.match(lines[1].detail, /ENOENT/);
  });

  it('autoport proxy notifies once its listeners are open, naming them', async (t) => {
    const fake = fakeNotify(t);
    const dir = tempDir(t, 'autoport-ready-proxy-');
    const config = writeOfflineConfig(dir, [
      'listen:',
      '  imap: 127.0.0.1:0',
      '  pop3: 127.0.0.1:0',
      `keyFile: ${join(dir, 'autoport.key')}`,
      'control:',
      `  socket: ${join(dir, 'autoport.sock')}`,
      // no fixed port: the default 9465 may be taken by another test
      '  metrics: 127.0.0.1:0',
    ]);
    await generateKeyFile(join(dir, 'autoport.key'));
    const saved = { PATH: process.env.PATH, NOTIFY_SOCKET: process.env.NOTIFY_SOCKET };
    process.env.PATH = `${fake.dir}:${saved.PATH ?? ''}`;
    process.env.NOTIFY_SOCKET = '/run/systemd/notify';
    defer(t, () => {
      process.env.PATH = saved.PATH;
      if (saved.NOTIFY_SOCKET === undefined) delete process.env.NOTIFY_SOCKET;
      else process.env.NOTIFY_SOCKET = saved.NOTIFY_SOCKET;
    });
    const signals = new EventEmitter();
    const sink = memorySink();
    let ports: number[] = [];
    let metricsPort = 0;
    const service = runProxyService({
      configPath: config,
      workers: false,
      graceMs: 0,
      signals: signals as unknown as Pick<NodeJS.Process, 'on' | 'off'>,
      log: { sink, format: 'json' },
      onMetricsReady: (a) => (metricsPort = a.port),
      onReady: (g) => {
        ports = Object.values(g.listeners).map((a) => a.port);
      },
    });
    defer(t, async () => {
      signals.emit('SIGTERM');
      await service;
    });
    for (let waited = 0; fake.calls().length === 0; waited += 20) {
      assert.ok(waited < 10_000, `systemd-notify was not run; log:\n${sink.text()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const [call] = fake.calls();
    assert.equal(call![1], '--ready');
    assert.equal(call![2], `--pid=${process.pid}`);
    assert.equal(ports.length, 2);
    assert.ok(metricsPort > 0, 'the metrics endpoint was open before');
    for (const port of ports) assert.ok(call![3]!.includes(`127.0.0.1:${port}`), call![3]);
  });
});
