/**
 * The control socket (src/core/control/server.ts and client.ts) on real Unix sockets in
 * temp folders: requests and answers, hostile lines, watch pushes and a reader that stops
 * reading, stale and live sockets at the path, the file's mode, and another user refused by
 * the kernel.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, lstatSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { after, before, describe, it } from 'node:test';
import {
  connectControl,
  ControlRequestError,
  ControlUnavailableError,
} from '../../src/core/control/client.js';
import {
  MAX_LINE_BYTES,
  type Hello,
  type MonitorSnapshot,
} from '../../src/core/control/protocol.js';
import {
  startControlServer,
  type ControlHandlers,
  type ControlServer,
} from '../../src/core/control/server.js';
import { OperatorError } from '../../src/core/errors.js';
import { RawClient } from './proxy-support.js';
import { createLogger, memorySink } from '../../src/core/log/index.js';

const HELLO: Hello = {
  protocol: 1,
  version: '0.0.0-test',
  pid: process.pid,
  startedAt: '2026-01-01T00:00:00.000Z',
  configFile: '/etc/autoport/autoport.yaml',
  listeners: { imap: { host: '127.0.0.1', port: 1143 } },
};

function snapshotNo(n: number, padding = ''): MonitorSnapshot {
  return {
    at: `#${n}${padding}`,
    gateway: HELLO,
    accounts: { unknown: 0, captured: n, transferring: 0, migrated: 0, failed: 0, excluded: 0 },
    queue: 0,
    sessions: { total: 0, byProtocol: { imap: 0, pop3: 0, smtp: 0 }, list: [] },
    closed: [],
    transfers: [],
    minutes: [],
    errors: [],
    nodes: [],
  };
}

interface Fixture {
  dir: string;
  path: string;
  server: ControlServer;
  log: ReturnType<typeof memorySink>;
  snapshots: () => number;
}

async function start(
  dir: string,
  opts: { padding?: string; limits?: Parameters<typeof startControlServer>[0]['limits'] } = {},
): Promise<Fixture> {
  const path = join(dir, 'autoport.sock');
  const log = memorySink();
  let n = 0;
  const handlers: ControlHandlers = {
    hello: () => HELLO,
    snapshot: () => snapshotNo(++n, opts.padding),
    'accounts.change': (p) => {
      const { action, address } = p as { action: string; address: string };
      if (address === 'locked@example.org')
        throw new OperatorError(
          'locked@example.org is transferring: a transfer is running',
          'wait until it ends',
          'EACCOUNTSTATE',
        );
      if (address === 'bug@example.org') throw new TypeError('secret internals');
      return {
        address,
        before: 'captured',
        after: 'excluded',
        changed: true,
        message: `${action} ${address}`,
      };
    },
    'accounts.import': () => ({ added: 0, alreadyKnown: 0, total: 0, marked: 0, unchanged: 0 }),
    'transfer.start': () => {
      throw new OperatorError('no', 'no', 'ENO');
    },
  };
  const server = await startControlServer({
    socketPath: path,
    logger: createLogger({ sink: log, format: 'json', level: 'debug' }),
    handlers,
    limits: opts.limits,
  });
  return { dir, path, server, log, snapshots: () => n };
}

/** A raw connection to the socket: the transcript client of the gateway tests, by lines. */
class Raw extends RawClient {
  static openPath(path: string): Promise<Raw> {
    return new Promise((resolve, reject) => {
      const s = connect(path, () => resolve(new Raw(s)));
      s.once('error', reject);
    });
  }
  /** the complete lines so far */
  lines(): Array<Record<string, unknown>> {
    return this.text
      .split('\n')
      .slice(0, -1)
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }
  async until(what: () => boolean, label: string, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!what()) {
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for ${label}; got ${this.text.slice(0, 500)}`);
      await this.nextData(100);
    }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('control socket', () => {
  let root: string;
  let fx: Fixture;

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'ap-control-'));
    fx = await start(root);
  });
  after(async () => {
    await fx?.server.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('creates the socket 0600 in place, with no temporary name left beside it', () => {
    const st = lstatSync(fx.path);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(root), ['autoport.sock']);
  });

  it('answers hello and calls; operator errors keep message, hint and code', async () => {
    const c = await connectControl(fx.path);
    try {
      assert.deepEqual(c.hello, HELLO);
      const r = await c.call('accounts.change', { action: 'exclude', address: 'a@example.org' });
      assert.equal(r.message, 'exclude a@example.org');
      const refused = await c
        .call('accounts.change', { action: 'exclude', address: 'locked@example.org' })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      assert.ok(refused instanceof ControlRequestError);
      assert.equal(refused.code, 'EACCOUNTSTATE');
      assert.equal(refused.hint, 'wait until it ends');
      assert.match(refused.message, /is transferring/);
      // A bug in a handler: the client gets a generic answer, the log gets the detail.
      const bug = await c
        .call('accounts.change', { action: 'exclude', address: 'bug@example.org' })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      assert.ok(bug instanceof ControlRequestError);
      assert.equal(bug.code, 'EINTERNAL');
      assert.doesNotMatch(bug.message, /secret internals/);
      assert.match(fx.log.text(), /secret internals/);
      // the connection still works
      assert.equal((await c.call('hello', {})).pid, process.pid);
    } finally {
      c.close();
    }
  });

  it('answers an unknown method with EUNKNOWNMETHOD and keeps the connection', async () => {
    const raw = await Raw.openPath(fx.path);
    raw.socket.write(
      '{"id":7,"method":"accounts.delete","params":{}}\n{"id":8,"method":"hello"}\n',
    );
    await raw.until(() => raw.lines().length >= 2, 'two answers');
    const [a, b] = raw.lines();
    assert.equal(a!.id, 7);
    assert.equal(a!.ok, false);
    assert.equal((a!.error as { code: string }).code, 'EUNKNOWNMETHOD');
    assert.deepEqual(b, { id: 8, ok: true, result: HELLO });
    assert.equal(raw.closed, false);
    raw.socket.destroy();
  });

  it('closes the connection after a line that is not JSON, saying why', async () => {
    const raw = await Raw.openPath(fx.path);
    raw.socket.write('{"id":1,"method":"hello"\n{"id":2,"method":"hello"}\n');
    await raw.until(() => raw.closed, 'close');
    const lines = raw.lines();
    assert.equal(lines.length, 1, 'nothing after the bad line is answered');
    assert.equal(lines[0]!.id, 0);
    assert.equal((lines[0]!.error as { code: string }).code, 'EBADJSON');
  });

  it('closes the connection on a request without an id', async () => {
    const raw = await Raw.openPath(fx.path);
    raw.socket.write('{"method":"hello"}\n');
    await raw.until(() => raw.closed, 'close');
    assert.equal((raw.lines()[0]!.error as { code: string }).code, 'EBADREQUEST');
  });

  it('closes the connection once a line passes MAX_LINE_BYTES, without waiting for its end', async () => {
    const raw = await Raw.openPath(fx.path);
    const big = Buffer.alloc(MAX_LINE_BYTES + 1, 0x61);
    raw.socket.write(big);
    await raw.until(() => raw.closed, 'close');
    assert.equal((raw.lines()[0]!.error as { code: string }).code, 'ELINETOOLONG');
  });

  it('takes a line of exactly MAX_LINE_BYTES', async () => {
    {
      const head = '{"id":2,"method":"hello","params":{"pad":"';
      const tail = '"}}';
      const line = head + 'x'.repeat(MAX_LINE_BYTES - head.length - tail.length) + tail;
      assert.equal(Buffer.byteLength(line), MAX_LINE_BYTES);
      const raw = await Raw.openPath(fx.path);
      raw.socket.write(line + '\n');
      await raw.until(() => raw.lines().length === 1, 'the answer');
      assert.deepEqual(raw.lines()[0], { id: 2, ok: true, result: HELLO });
      raw.socket.destroy();
    }
  });

  it('pushes snapshots after watch until the client closes', async () => {
    const c = await connectControl(fx.path);
    const got: MonitorSnapshot[] = [];
    const first = await c.watch(200, (s) => got.push(s));
    const firstNo = Number(first.at.slice(1));
    while (got.length < 3) await sleep(50);
    assert.deepEqual(
      got.slice(0, 3).map((s) => Number(s.at.slice(1))),
      [firstNo + 1, firstNo + 2, firstNo + 3],
    );
    c.close();
    while (fx.server.connections() > 0) await sleep(20);
    const calls = fx.snapshots();
    await sleep(700);
    assert.equal(fx.snapshots(), calls, 'no snapshot is built for a closed connection');
  });

  it('refuses a watch interval that is not a number', async () => {
    const c = await connectControl(fx.path);
    try {
      const err = await c.call('watch', { intervalMs: 'soon' as unknown as number }).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(err instanceof ControlRequestError);
      assert.equal(err.code, 'EPARAMS');
    } finally {
      c.close();
    }
  });

  it('throws ControlUnavailableError when nothing listens', async () => {
    await assert.rejects(connectControl(join(root, 'nothing.sock')), ControlUnavailableError);
  });
});

describe('control socket: bounds', () => {
  let root: string;
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'ap-control-b-'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('answers EBUSY beyond maxConnections', async () => {
    const fx = await start(mkdtempSync(join(root, 'c-')), { limits: { maxConnections: 2 } });
    const a = await connectControl(fx.path);
    const b = await connectControl(fx.path);
    try {
      const err = await connectControl(fx.path).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(err instanceof ControlRequestError, String(err));
      assert.equal(err.code, 'EBUSY');
      a.close();
      while (fx.server.connections() > 1) await sleep(20);
      const c = await connectControl(fx.path);
      c.close();
    } finally {
      a.close();
      b.close();
      await fx.server.close();
    }
  });

  it('skips pushes to a client that does not read, and resumes when it does', async () => {
    // 512 KiB snapshots: a few fill the socket buffers, then pushes stop being built.
    const fx = await start(mkdtempSync(join(root, 'p-')), { padding: 'p'.repeat(512 * 1024) });
    const raw = await Raw.openPath(fx.path);
    try {
      raw.socket.pause();
      raw.socket.write('{"id":1,"method":"watch","params":{"intervalMs":200}}\n');
      await sleep(3000); // 15 intervals
      const whilePaused = fx.snapshots();
      assert.ok(
        whilePaused <= 6,
        `only as many snapshots as fit the buffers were built (${whilePaused} of 15 intervals)`,
      );
      raw.socket.resume();
      await raw.until(() => raw.lines().length >= whilePaused + 2, 'pushes after resuming');
      const lines = raw.lines();
      assert.equal(lines[0]!.id, 1);
      for (const l of lines.slice(1)) assert.equal(l.push, 'snapshot');
      assert.ok(fx.snapshots() > whilePaused);
    } finally {
      raw.socket.destroy();
      await fx.server.close();
    }
  });
});

describe('control socket: the path', () => {
  let root: string;
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'ap-control-p-'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('refuses to start while another server answers there, and leaves it working', async () => {
    const first = await start(mkdtempSync(join(root, 'a-')));
    try {
      const err = await start(first.dir).then(
        (s) => s.server.close().then(() => undefined),
        (e: unknown) => e,
      );
      assert.ok(err instanceof OperatorError);
      assert.equal(err.code, 'EADDRINUSE');
      const c = await connectControl(first.path);
      assert.equal(c.hello.pid, process.pid);
      c.close();
    } finally {
      await first.server.close();
    }
    assert.equal(existsSync(first.path), false, 'close removes the socket file');
  });

  it('replaces a stale socket left by a killed process', async () => {
    const dir = mkdtempSync(join(root, 's-'));
    const path = join(dir, 'autoport.sock');
    const killed = spawnSync(process.execPath, [
      '-e',
      `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`,
    ]);
    assert.equal(killed.signal, 'SIGKILL');
    assert.ok(lstatSync(path).isSocket(), 'the killed process left its socket behind');
    await assert.rejects(connectControl(path), ControlUnavailableError);
    const fx = await start(dir);
    try {
      const c = await connectControl(path);
      assert.deepEqual(c.hello, HELLO);
      c.close();
    } finally {
      await fx.server.close();
    }
  });

  it('leaves a file that is not a socket alone', async () => {
    const dir = mkdtempSync(join(root, 'f-'));
    writeFileSync(join(dir, 'autoport.sock'), 'keep me');
    const err = await start(dir).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof OperatorError);
    assert.equal(err.code, 'ENOTSOCK');
    assert.ok(lstatSync(join(dir, 'autoport.sock')).isFile());
  });

  it('warns when other users can write the folder', async () => {
    const dir = mkdtempSync(join(root, 'w-'));
    chmodSync(dir, 0o777);
    const fx = await start(dir);
    await fx.server.close();
    assert.match(fx.log.text(), /writable by other users/);
  });

  it('refuses a path too long for a Unix socket', async () => {
    const err = await startControlServer({
      socketPath: join(root, 'x'.repeat(120)),
      handlers: {} as ControlHandlers,
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof OperatorError);
    assert.equal(err.code, 'ENAMETOOLONG');
  });
});

describe('control socket: another user', () => {
  const NOBODY = 65534;

  it('is refused by the kernel (EACCES), and the client says whose socket it is', async (t) => {
    if (process.getuid?.() !== 0) {
      t.skip('needs root to run a client as another uid (CI runs as root)');
      return;
    }
    // 0755 folder: nobody may reach the socket, so only the socket's own mode can refuse.
    const dir = mkdtempSync(join(tmpdir(), 'ap-control-u-'));
    chmodSync(dir, 0o755);
    const fx = await start(dir);
    // The child cannot load the project: a clone may sit in a folder only root may enter
    // (as `mktemp -d` makes). It gets the client bundled into that world-readable folder.
    const clientFile = join(dir, 'client.mjs');
    await build({
      entryPoints: [fileURLToPath(new URL('../../src/core/control/client.ts', import.meta.url))],
      bundle: true,
      platform: 'node',
      format: 'esm',
      outfile: clientFile,
      logLevel: 'warning',
    });
    chmodSync(clientFile, 0o644);
    const asNobody = (code: string): Promise<string> =>
      new Promise((resolve, reject) => {
        const child = spawn(
          'setpriv',
          [
            `--reuid=${NOBODY}`,
            `--regid=${NOBODY}`,
            '--clear-groups',
            process.execPath,
            '--input-type=module',
            '-e',
            code,
          ],
          {
            cwd: '/',
            stdio: ['ignore', 'pipe', 'pipe'],
            env: { PATH: process.env.PATH, HOME: '/' },
          },
        );
        let out = '';
        let err = '';
        child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
        child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
        child.on('error', reject);
        child.on('close', (status) =>
          status === 0
            ? resolve(out.trim())
            : reject(new Error(`child failed (${status}): ${err}`)),
        );
      });
    const rawConnect = `import { connect } from 'node:net';
      const s = connect(${JSON.stringify(fx.path)});
      s.on('connect', () => { console.log('connected'); s.destroy(); });
      s.on('error', (e) => console.log(e.code));`;
    try {
      assert.equal(await asNobody(rawConnect), 'EACCES');
      const clientUrl = pathToFileURL(clientFile).href;
      const viaClient = await asNobody(`const m = await import(${JSON.stringify(clientUrl)});
        await m.connectControl(${JSON.stringify(fx.path)}).then(
          () => console.log('connected'),
          (e) => console.log(JSON.stringify({ code: e.code, hint: e.hint })));`);
      const e = JSON.parse(viaClient) as { code: string; hint: string };
      assert.equal(e.code, 'EACCES');
      assert.match(e.hint, /as the user that runs the proxy, e\.g\. sudo -u autoport/);
      // The same user with the mode opened up gets in: the refusal above was the mode's.
      chmodSync(fx.path, 0o666);
      assert.equal(await asNobody(rawConnect), 'connected');
    } finally {
      await fx.server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
