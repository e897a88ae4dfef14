/**
 * `autoport proxy` as an operator runs it: a real child process (the oclif command from
 * src), JSON logs on a pipe, SIGHUP reloading the config without dropping a session, and
 * SIGTERM letting open sessions finish within the grace period before saving the state.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { generateKeyFile } from '../../src/core/state/crypto.js';
import { startLab, writeLabConfig, type Lab } from '../support/index.js';
import { gatewayImap } from './proxy-support.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

interface LogLine {
  msg: string;
  level: string;
  [k: string]: unknown;
}

class ProxyProcess {
  lines: LogLine[] = [];
  raw = '';
  exited: Promise<number | null>;
  private waiters: Array<() => void> = [];
  constructor(readonly child: ChildProcess) {
    let buf = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      this.raw += d;
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          this.lines.push(JSON.parse(line) as LogLine);
        } catch {
          this.lines.push({ msg: `UNPARSABLE ${line}`, level: 'x' });
        }
        for (const w of this.waiters.splice(0)) w();
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.raw += d));
    this.exited = new Promise((r) => child.on('exit', (code) => r(code)));
  }
  async waitFor(re: RegExp, timeoutMs = 20_000): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.lines.find((l) => re.test(l.msg));
      if (hit) return hit;
      if (Date.now() > deadline)
        throw new Error(`no log line ${re}; output:\n${this.raw.slice(-3000)}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 200);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }
}

function startProxy(configFile: string): ProxyProcess {
  const code = `const { default: P } = await import(${JSON.stringify(resolve(ROOT, 'src/commands/proxy.ts'))}); await P.run(['--config', ${JSON.stringify(configFile)}, '--grace', '2', '--no-workers']);`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new ProxyProcess(child);
}

describe('autoport proxy (child process, signals)', { timeout: 90_000 }, () => {
  let lab: Lab;
  let file: string;
  let proc: ProxyProcess | undefined;
  before(async () => {
    lab = await startLab();
    file = writeLabConfig(lab, lab.dir, { listen: { imap: '127.0.0.1:0', pop3: '127.0.0.1:0' } });
    const cfg = parse(readFileSync(file, 'utf8')) as { keyFile: string };
    await generateKeyFile(cfg.keyFile);
  });
  after(async () => {
    if (proc && proc.child.exitCode === null) proc.child.kill('SIGKILL');
    await lab?.stop();
  });

  it('serves, reloads on SIGHUP without dropping sessions, stops gracefully on SIGTERM', async () => {
    proc = startProxy(file);
    const ready = await proc.waitFor(/^autoport proxy listening: /);
    const port = Number(/imap 127\.0\.0\.1:(\d+)/.exec(ready.msg)?.[1]);
    assert.ok(port > 0, ready.msg);
    assert.ok(!proc.raw.includes('UNPARSABLE'), 'every stdout line is JSON when not on a terminal');

    const c = gatewayImap(port, 'alice@example.org', 'alice-secret');
    await c.connect();
    await c.mailboxOpen('INBOX');

    const cfg = parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    writeFileSync(
      file,
      stringify({
        ...cfg,
        strategy: 'immediate',
        listen: { imap: '127.0.0.1:0', pop3: '127.0.0.1:0' },
      }),
    );
    proc.child.kill('SIGHUP');
    await proc.waitFor(/^configuration and certificate reloaded/);
    await c.noop();

    writeFileSync(file, 'source: [broken');
    proc.child.kill('SIGHUP');
    await proc.waitFor(/^reload failed; still running/);
    await c.noop();

    const t0 = Date.now();
    proc.child.kill('SIGTERM');
    await proc.waitFor(/^SIGTERM: stopping/);
    await c.noop(); // still served during the grace period
    const code = await proc.exited;
    assert.equal(code, 0, proc.raw.slice(-2000));
    assert.ok(Date.now() - t0 >= 1500, 'the open session got its grace period');
    await proc.waitFor(/^stopped; state saved/);
    const closed = proc.lines.find((l) => l.event === 'session.closed' && l.reason === 'shutdown');
    assert.ok(closed, 'the session left open was closed as shutdown');
    const state = JSON.parse(readFileSync(resolve(lab.dir, 'state.json'), 'utf8')) as {
      accounts: Record<string, { state: string }>;
    };
    assert.equal(state.accounts['alice@example.org']?.state, 'captured');
    assert.ok(!proc.raw.includes('alice-secret'));
    await c.close();
  });
});
