/**
 * The state disk fails under the running gateway (issue #10 item 6): `autoport proxy`
 * (runProxyService) over a real lab, with its state file on one small tmpfs and its logs
 * (sessions.jsonl, smtp-relay.jsonl) on another. Both disks fill up (ENOSPC) and are
 * emptied again; then the state disk is remounted read-only (EROFS) and writable again.
 * Through each episode: an account captured before keeps logging in over IMAP and POP3,
 * mail keeps routing with 250 and arrives, /healthz says degraded (503) and comes back to
 * ok by itself, every failed save is counted, the failure is logged once, and nothing
 * written while the disk was full is lost once it has room.
 *
 * Needs root (mount); CI runs as root. The logs stay on a disk that is never made
 * read-only: a file system with files open for writing refuses `remount,ro` (EBUSY); a
 * kernel that turns a failing disk read-only by itself does not ask.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { closeSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import nodemailer from 'nodemailer';
import type { Gateway } from '../../src/core/gateway/gateway.js';
import { runProxyService, type ProxyServiceResult } from '../../src/core/gateway/service.js';
import { memorySink } from '../../src/core/log/index.js';
import { generateKeyFile } from '../../src/core/state/crypto.js';
import {
  makeTempDir,
  onProcessExit,
  removeDir,
  startLab,
  writeLabConfig,
  type Lab,
} from '../support/index.js';
import { parseExposition } from '../support/prometheus.js';
import { readStateSync } from '../support/state-file.js';
import { FAST_BRAKES, RawClient, readIfExists } from './proxy-support.js';
import { count, mail, waitForInbox } from './smtp-support.js';

const fakeSignals = (e: EventEmitter) => e as unknown as Pick<NodeJS.Process, 'on' | 'off'>;
const SAVE_FAILED = 'saving the state failed';

/** A small tmpfs that can be filled, emptied, made read-only and writable again. */
class Disk {
  private readonly fillPath: string;
  private readonly forget: () => void;
  private mounted = true;

  constructor(
    readonly dir: string,
    sizeKiB: number,
  ) {
    mkdirSync(dir, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKiB}k,mode=0700`, 'tmpfs', dir]);
    this.fillPath = join(dir, 'fill');
    // a crashed run must not leave the mount behind
    this.forget = onProcessExit(() => execFileSync('umount', ['-l', dir]));
  }

  /** Take every free block: the next write anywhere on the disk fails with ENOSPC. */
  fill(): void {
    const fd = openSync(this.fillPath, 'a');
    const chunk = Buffer.alloc(4096);
    try {
      for (;;) writeSync(fd, chunk);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
    } finally {
      closeSync(fd);
    }
  }

  empty(): void {
    rmSync(this.fillPath, { force: true });
  }

  readOnly(on: boolean): void {
    execFileSync('mount', ['-o', `remount,${on ? 'ro' : 'rw'}`, this.dir]);
  }

  unmount(): void {
    if (!this.mounted) return;
    this.mounted = false;
    try {
      execFileSync('umount', [this.dir]);
    } catch {
      execFileSync('umount', ['-l', this.dir]); // something still holds it: detach anyway
    }
    this.forget();
  }
}

async function until<T>(what: string, f: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe(
  'the state disk fills up or turns read-only under autoport proxy',
  { timeout: 240_000 },
  () => {
    let lab: Lab;
    let mounts: string;
    let stateDisk: Disk | undefined;
    let logDisk: Disk | undefined;
    const signals = new EventEmitter();
    let service: Promise<ProxyServiceResult> | undefined;
    let gateway: Gateway;
    let base: string;
    const log = memorySink();
    let statePath: string;
    let logDir: string;
    let alice: { user: string; password: string };

    before(async () => {
      if (process.getuid?.() !== 0)
        throw new Error(
          'state-disk-faults mounts a tmpfs and so needs root (CI runs as root); run it as root',
        );
      lab = await startLab({ sourceQuirks: { authFailureDelay: '0 secs' } });
      alice = lab.users[0]!;
      mounts = makeTempDir('state-disk');
      // 256 KiB: the state file, its backup and a temp copy fit many times over
      stateDisk = new Disk(join(mounts, 'state'), 256);
      logDisk = new Disk(join(mounts, 'log'), 256);
      statePath = join(stateDisk.dir, 'state.json');
      logDir = logDisk.dir;
      const file = writeLabConfig(lab, lab.dir, {
        listen: { imap: '127.0.0.1:0', pop3: '127.0.0.1:0', smtp: '127.0.0.1:0' },
        state: statePath,
        logDir,
        // Not beside the state: the bound socket pins the deleted folder it was bound in
        // (socket-file.ts), and a tmpfs holding a deleted but live inode refuses remount,ro.
        control: { metrics: '127.0.0.1:0', socket: join(lab.dir, 'autoport.sock') },
        timeouts: { connectMs: 3000, greetingMs: 3000, commandMs: 10_000, idleMs: 60_000 },
      });
      await generateKeyFile(join(lab.dir, 'autoport.key'));
      let metricsPort = 0;
      await new Promise<void>((resolve, reject) => {
        service = runProxyService({
          configPath: file,
          workers: false,
          signals: fakeSignals(signals),
          graceMs: 2000,
          limits: FAST_BRAKES,
          log: { sink: log, format: 'json', level: 'debug' },
          onMetricsReady: (a) => (metricsPort = a.port),
          onReady: (g) => {
            gateway = g;
            resolve();
          },
        });
        service.catch(reject);
      });
      base = `http://127.0.0.1:${metricsPort}`;
    });

    after(async () => {
      try {
        // whatever failed, the disks must be writable for the store's last save and lock
        stateDisk?.readOnly(false);
        stateDisk?.empty();
        logDisk?.empty();
      } catch {
        // not mounted (before() failed early) or already writable
      }
      try {
        if (service && gateway) {
          signals.emit('SIGTERM');
          signals.emit('SIGTERM');
          await service.catch(() => undefined);
        }
      } finally {
        stateDisk?.unmount();
        logDisk?.unmount();
        if (mounts) removeDir(mounts);
        await lab?.stop();
      }
    });

    async function health(): Promise<{ code: number; body: { status: string; why?: string } }> {
      const r = await fetch(`${base}/healthz`);
      return { code: r.status, body: (await r.json()) as { status: string; why?: string } };
    }

    async function metric(name: string): Promise<number | undefined> {
      const r = await fetch(`${base}/metrics`);
      return parseExposition(await r.text()).get(name);
    }

    /** IMAP LOGIN and SELECT through the gateway: the full transcript, or an error. */
    async function imapLogin(user: string, password: string): Promise<string> {
      const c = await RawClient.open(gateway.listeners.imap!.port);
      try {
        await c.waitFor(/^\* OK/m);
        c.send(`a1 LOGIN ${user} ${password}\r\n`);
        const m = await c.waitFor(/^a1 (OK|NO|BAD)/m, 15_000);
        if (m[1] === 'OK') {
          c.send('a2 SELECT INBOX\r\n');
          await c.waitFor(/^a2 OK/m, 15_000);
          c.send('a3 LOGOUT\r\n');
          await c.waitFor(/^a3 OK/m);
        }
        return c.text;
      } finally {
        c.close();
      }
    }

    async function pop3Login(user: string, password: string): Promise<string> {
      const c = await RawClient.open(gateway.listeners.pop3!.port);
      try {
        await c.waitFor(/^\+OK[^\r\n]*\r\n/);
        const command = async (line: string): Promise<string> => {
          const from = c.text.length;
          c.send(`${line}\r\n`);
          return (await c.waitFor(/^[^\r\n]*\r\n/, 15_000, from))[0];
        };
        await command(`USER ${user}`);
        if ((await command(`PASS ${password}`)).startsWith('+OK')) {
          await command('STAT');
          await command('QUIT');
        }
        return c.text;
      } finally {
        c.close();
      }
    }

    async function sendMail(to: string, marker: string): Promise<string> {
      const t = nodemailer.createTransport({
        host: '127.0.0.1',
        port: gateway.listeners.smtp!.port,
        secure: false,
        ignoreTLS: true,
      });
      try {
        const r = await t.sendMail({
          envelope: { from: 'sender@elsewhere.test', to: [to] },
          raw: mail('sender@elsewhere.test', to, marker),
        });
        return r.response;
      } finally {
        t.close();
      }
    }

    const saveFailedLines = (): number =>
      log.lines.filter((l) => (JSON.parse(l) as { msg: string }).msg.startsWith(SAVE_FAILED))
        .length;

    // the snapshot with its journal replayed: what a restart would load
    const onDisk = (user = alice.user): { lastLogin?: string; credentials?: unknown } | undefined =>
      readStateSync(statePath).accounts[user];

    it('captures an account while the disk is healthy', async () => {
      assert.match(await imapLogin(alice.user, alice.password), /^a2 OK/m);
      const rec = await until('the capture on disk', async () =>
        onDisk()?.credentials ? onDisk() : undefined,
      );
      assert.ok(rec?.lastLogin);
      assert.deepEqual((await health()).code, 200);
      assert.equal(saveFailedLines(), 0);
    });

    it('disk full: logins and mail go on, /healthz 503, counted, logged once; all saved after', async () => {
      const savedLogin = onDisk()?.lastLogin;
      stateDisk!.fill();
      logDisk!.fill();

      // A captured account needs no durable write to log in: it goes on.
      assert.match(await imapLogin(alice.user, alice.password), /^a2 OK/m);
      assert.match(await pop3Login(alice.user, alice.password), /^\+OK \d+ \d+\r$/m);
      const h = await until('/healthz degraded', async () => {
        const x = await health();
        return x.code === 503 ? x : undefined;
      });
      assert.equal(h.body.status, 'degraded');
      assert.match(h.body.why ?? '', /ENOSPC/);

      // A first login needs its capture on disk: try later, and again on the retry (the
      // capture held in memory only must not let the retry through either).
      const bob = lab.users[1]!;
      assert.match(await imapLogin(bob.user, bob.password), /^a1 NO \[UNAVAILABLE\]/m);
      assert.match(await pop3Login(bob.user, bob.password), /^-ERR \[SYS\/TEMP\]/m);
      assert.match(await imapLogin(bob.user, bob.password), /^a1 NO \[UNAVAILABLE\]/m);

      // Mail is answered 250 only once the backend took it, whatever the relay log can do.
      const reply = await sendMail(alice.user, 'full-disk-1');
      assert.match(reply, /^250 /);
      await waitForInbox(lab.source, alice, (m) => count(m, 'full-disk-1') === 1);

      // several retries (one a second) later: counted each time, logged once (waited for,
      // not slept on: a busy machine retries later than once a second)
      await until('two failed saves counted', async () =>
        ((await metric('autoport_state_save_failures_total')) ?? 0) >= 2 ? true : undefined,
      );
      assert.equal(await metric('autoport_state_save_failing'), 1);
      assert.equal(saveFailedLines(), 1, 'one log line for the episode, not one per retry');
      assert.equal(onDisk()?.lastLogin, savedLogin, 'the disk really is full');

      stateDisk!.empty();
      logDisk!.empty();
      const ok = await until('/healthz ok again', async () => {
        const x = await health();
        return x.code === 200 ? x : undefined;
      });
      assert.equal(ok.body.status, 'ok');
      assert.equal(await metric('autoport_state_save_failing'), 0);
      assert.notEqual(onDisk()?.lastLogin, savedLogin, 'the logins of the episode are saved');
      // the disk has room: the first login goes through and its capture is on disk
      assert.match(await imapLogin(bob.user, bob.password), /^a2 OK/m);
      assert.ok(onDisk(bob.user)?.credentials, 'captured and saved before the splice');
      // what the logs could not take while the disk was full is written now
      await until(
        'the relay log entry',
        async () =>
          readIfExists(join(logDir, 'smtp-relay.jsonl')).includes('<full-disk-1@test>') ||
          undefined,
      );
      const sessions = await until('the session log', async () => {
        const text = readIfExists(join(logDir, 'sessions.jsonl'));
        return (text.match(/"type":"session\.login"/g) ?? []).length >= 3 ? text : undefined;
      });
      assert.ok(
        sessions.split('\n').every((l) => l === '' || JSON.parse(l)),
        'no torn line',
      );
    });

    it('read-only disk: the same, and writable again recovers without a restart', async () => {
      const failuresBefore = (await metric('autoport_state_save_failures_total')) ?? 0;
      const savedLogin = onDisk()?.lastLogin;
      stateDisk!.readOnly(true);
      try {
        assert.match(await imapLogin(alice.user, alice.password), /^a2 OK/m);
        const h = await until('/healthz degraded', async () => {
          const x = await health();
          return x.code === 503 ? x : undefined;
        });
        assert.match(h.body.why ?? '', /EROFS/);
        assert.match(await pop3Login(alice.user, alice.password), /^\+OK \d+ \d+\r$/m);
        assert.match(await sendMail(alice.user, 'ro-disk-1'), /^250 /);
        await waitForInbox(lab.source, alice, (m) => count(m, 'ro-disk-1') === 1);
        await new Promise((r) => setTimeout(r, 1500));
        assert.ok(((await metric('autoport_state_save_failures_total')) ?? 0) > failuresBefore);
        assert.equal(saveFailedLines(), 2, 'a new episode, logged once');
      } finally {
        stateDisk!.readOnly(false);
      }
      await until('/healthz ok again', async () =>
        (await health()).code === 200 ? true : undefined,
      );
      await until('the logins saved', async () =>
        onDisk()?.lastLogin !== savedLogin ? true : undefined,
      );
      assert.equal(saveFailedLines(), 2);
    });
  },
);
