/**
 * The gateway against Dovecot itself, in one run (`npm run bench:proxy`):
 *   - logins per second (connect, LOGIN, LOGOUT; N clients in parallel), direct vs gateway
 *   - time to fetch a whole mailbox (UID FETCH 1:* BODY.PEEK[] on a raw socket), direct vs gateway
 *   - memory per idle spliced IMAP session (gateway RSS growth / sessions), beside
 *     Dovecot's own per-session memory
 * The gateway runs as a child process (the real `autoport proxy` service), so its RSS is
 * its own. nginx's mail proxy is measured too when nginx with the mail module is installed.
 * Env: BENCH_MB (mailbox size, default 270), BENCH_SESSIONS (default 1500),
 *      BENCH_SECONDS (login test length, default 8), BENCH_CLIENTS (parallel logins, default 16),
 *      BENCH_FETCH_ROUNDS (whole-mailbox fetches per target, median reported, default 5).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { generateKeyFile } from '../src/core/state/crypto.js';
import { bulkCorpus, loadBulk, startDovecot, type DovecotInstance } from '../test/support/index.js';
import { startNginxMail, type NginxMail } from './nginx-mail.js';

const ROOT = resolve(fileURLToPath(import.meta.url), '../..');
const MB = Number(process.env.BENCH_MB ?? 270);
const SESSIONS = Number(process.env.BENCH_SESSIONS ?? 1500);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 16);
const FETCH_ROUNDS = Number(process.env.BENCH_FETCH_ROUNDS ?? 5);
const USER = { user: 'bench@example.org', password: 'bench-secret' };

/**
 * A tiny IMAP client on a raw socket that keeps only the last few KB as latin1 text, so
 * its own CPU use stays small: on a 2-core machine the client competes with the gateway.
 */
class Raw {
  private tail = '';
  private want: { re: RegExp; resolve: () => void; reject: (e: Error) => void } | undefined;
  bytes = 0;
  constructor(readonly sock: Socket) {
    sock.on('data', (d: Buffer) => {
      this.bytes += d.length;
      if (!this.want) {
        this.tail = (this.tail + d.toString('latin1')).slice(-4096);
        return;
      }
      // only the end of a big chunk can hold the tagged reply
      this.tail = (this.tail + d.subarray(Math.max(0, d.length - 4096)).toString('latin1')).slice(
        -4096,
      );
      if (this.want.re.test(this.tail)) {
        const w = this.want;
        this.want = undefined;
        this.tail = '';
        w.resolve();
      }
    });
    sock.on('error', (e) => this.want?.reject(e));
    sock.on('close', () =>
      this.want?.reject(
        new Error(`connection closed; last bytes: ${JSON.stringify(this.tail.slice(-300))}`),
      ),
    );
  }
  static open(port: number): Promise<Raw> {
    return new Promise((res, rej) => {
      const s = connect(port, '127.0.0.1', () => res(new Raw(s)));
      s.once('error', rej);
    });
  }
  until(re: RegExp): Promise<void> {
    if (re.test(this.tail)) {
      this.tail = '';
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => (this.want = { re, resolve, reject }));
  }
  async cmd(line: string, done: RegExp): Promise<void> {
    const p = this.until(done);
    this.sock.write(`${line}\r\n`);
    await p;
  }
}

async function login(port: number): Promise<Raw> {
  const c = await Raw.open(port);
  await c.until(/^\* OK.*\r\n/m);
  await c.cmd(`a LOGIN ${USER.user} ${USER.password}`, /^a OK.*\r\n/m);
  return c;
}

async function loginsPerSecond(port: number): Promise<number> {
  const end = Date.now() + SECONDS * 1000;
  let n = 0;
  const worker = async (): Promise<void> => {
    while (Date.now() < end) {
      const c = await login(port);
      await c.cmd('b LOGOUT', /^b OK.*\r\n/m);
      c.sock.destroy();
      n++;
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CLIENTS }, worker));
  return n / ((performance.now() - t0) / 1000);
}

async function fetchAll(port: number): Promise<{ seconds: number; bytes: number }> {
  const c = await login(port);
  await c.cmd('s EXAMINE INBOX', /^s OK.*\r\n/m);
  const before = c.bytes;
  const t0 = performance.now();
  await c.cmd('f UID FETCH 1:* BODY.PEEK[]', /\r\nf OK[^\r\n]*\r\n$/);
  const seconds = (performance.now() - t0) / 1000;
  const bytes = c.bytes - before;
  c.sock.destroy();
  return { seconds, bytes };
}

/** Proportional set size: shared pages split among the processes sharing them (else RSS). */
function rssKb(pid: number): number {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    if (m) return Number(m[1]);
    const r = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return r ? Number(r[1]) : 0;
  } catch {
    return 0;
  }
}

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
  } catch {
    return 0;
  }
}

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const t of readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)) {
      const c = Number(t);
      out.push(c, ...childrenOf(c));
    }
  } catch {
    /* gone */
  }
  return out;
}

/** `gc`: ask a Node process to collect garbage first (the gateway child listens on SIGUSR2). */
async function idleMemory(
  port: number,
  pids: () => number[],
  gc?: () => void,
): Promise<{ perSessionKb: number; sessions: number }> {
  const settle = async (): Promise<number> => {
    gc?.();
    await new Promise((r) => setTimeout(r, 1000));
    return pids().reduce((a, p) => a + rssKb(p), 0);
  };
  const before = await settle();
  const open: Raw[] = [];
  for (let i = 0; i < SESSIONS; i += 50) {
    open.push(
      ...(await Promise.all(Array.from({ length: Math.min(50, SESSIONS - i) }, () => login(port)))),
    );
  }
  const after = await settle();
  for (const c of open) c.sock.destroy();
  await new Promise((r) => setTimeout(r, 1000));
  return { perSessionKb: (after - before) / SESSIONS, sessions: SESSIONS };
}

/**
 * Every login here is the same account from one address, many at once: the brakes would
 * (rightly) hold them back, and this measures the gateway's speed, not its brakes.
 */
const BENCH_BRAKES = {
  maxFailuresPerAddress: 1_000_000,
  maxFailuresPerAccount: 1_000_000,
  slowAccountAfter: 1_000_000,
  maxConcurrentPerAddress: 1_000_000,
  maxConcurrentPerAccount: 1_000_000,
};

async function startGatewayProcess(
  src: DovecotInstance,
  dir: string,
): Promise<{ child: ChildProcess; port: number }> {
  const file = join(dir, 'autoport.yaml');
  const cfg = {
    source: { imap: src.urls.imap },
    destination: { imap: src.urls.imap, provision: { kind: 'none' } },
    listen: { imap: '127.0.0.1:0' },
    domains: ['example.org'],
    state: join(dir, 'state.json'),
    keyFile: join(dir, 'autoport.key'),
    // the metrics endpoint on a free port: the default 9465 may be taken on this machine
    control: { metrics: '127.0.0.1:0' },
  };
  writeFileSync(file, stringify(cfg));
  await generateKeyFile(cfg.keyFile);
  const code = `process.on('SIGUSR2', () => globalThis.gc?.());
import { runProxyService } from ${JSON.stringify(join(ROOT, 'src/core/gateway/service.ts'))};
await runProxyService({ configPath: ${JSON.stringify(file)}, workers: false, graceMs: 0, log: { format: 'json', level: 'warn' },
  limits: { connections: { maxTotal: 100000, maxPerAddress: 100000 }, brakes: ${JSON.stringify(BENCH_BRAKES)} }, onReady: (g) => console.log('PORT ' + g.listeners.imap.port) });`;
  const child = spawn(
    process.execPath,
    ['--expose-gc', '--import', 'tsx', '--input-type=module', '-e', code],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const port = await new Promise<number>((res, rej) => {
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /PORT (\d+)/.exec(out);
      if (m) res(Number(m[1]));
    });
    child.once('exit', (c) => rej(new Error(`gateway exited (${c}): ${out}`)));
  });
  return { child, port };
}

function ratio(a: number, b: number): string {
  return `${(a / b).toFixed(2)}x`;
}

async function main(): Promise<void> {
  const log = (s: string): void => void process.stderr.write(`${s}\n`);
  log(`starting Dovecot and loading a ${MB} MB mailbox...`);
  const src = await startDovecot({
    name: 'bench',
    users: [USER],
    quirks: {
      maxUserIpConnections: SESSIONS * 2 + 100,
      extraConfig: [
        `default_process_limit = ${SESSIONS * 2 + 200}`,
        `default_client_limit = ${SESSIONS * 4 + 1000}`,
        `default_vsz_limit = 1G`,
        // Dovecot's built-in default caps the imap service at 1024 processes
        `service imap {\n  process_limit = ${SESSIONS * 2 + 200}\n}`,
      ].join('\n'),
    },
  });
  let gw: ChildProcess | undefined;
  let nginx: NginxMail | undefined;
  try {
    const avgSize = 100 * 1024;
    await loadBulk(
      src,
      USER.user,
      bulkCorpus({
        count: Math.max(1, Math.round((MB * 1024 * 1024) / avgSize)),
        avgSize,
        seed: 7,
      }),
    );
    const g = await startGatewayProcess(src, src.dir);
    gw = g.child;
    nginx = await startNginxMail(src).catch((err: Error) => {
      log(`nginx mail proxy not measured: ${err.message}`);
      return undefined;
    });
    const targets: Array<[string, number]> = [
      ['dovecot', src.ports.imap],
      ['autoport', g.port],
      ...(nginx ? [['nginx', nginx.port] as [string, number]] : []),
    ];
    const results: Record<
      string,
      { loginsPerSec: number; fetchSeconds: number; fetchMBps: number; idleKbPerSession?: number }
    > = {};
    await login(g.port).then((c) => c.sock.destroy()); // first login captures; later ones are the steady state
    for (const [name, port] of targets) {
      log(`${name}: logins...`);
      results[name] = {
        loginsPerSec: Math.round(await loginsPerSecond(port)),
        fetchSeconds: 0,
        fetchMBps: 0,
      };
      await fetchAll(port); // warm the page cache and Dovecot's indexes
    }
    // Fetch rounds alternate between targets (the machine's noise hits all alike); median wins.
    const times: Record<string, Array<{ seconds: number; bytes: number }>> = {};
    let gatewayCpu = 0;
    for (let round = 0; round < FETCH_ROUNDS; round++) {
      for (const [name, port] of targets) {
        log(`${name}: fetch ${round + 1}/${FETCH_ROUNDS}...`);
        const cpu0 = cpuSeconds(gw.pid!);
        (times[name] ??= []).push(await fetchAll(port));
        if (name === 'autoport') gatewayCpu += cpuSeconds(gw.pid!) - cpu0;
      }
    }
    log(
      `autoport used ${(gatewayCpu / FETCH_ROUNDS).toFixed(2)} CPU seconds per whole-mailbox fetch`,
    );
    for (const [name] of targets) {
      const sorted = times[name]!.sort((a, b) => a.seconds - b.seconds);
      const med = sorted[Math.floor(sorted.length / 2)]!;
      results[name]!.fetchSeconds = Number(med.seconds.toFixed(2));
      results[name]!.fetchMBps = Number((med.bytes / 1048576 / med.seconds).toFixed(1));
    }
    log(`autoport: ${SESSIONS} idle sessions...`);
    results.autoport!.idleKbPerSession = Number(
      (
        await idleMemory(
          g.port,
          () => [gw!.pid!],
          () => gw!.kill('SIGUSR2'),
        )
      ).perSessionKb.toFixed(1),
    );
    if (nginx) {
      log(`nginx: ${SESSIONS} idle sessions...`);
      results.nginx!.idleKbPerSession = Number(
        (await idleMemory(nginx.port, () => nginx!.pids())).perSessionKb.toFixed(1),
      );
    }
    log(`dovecot: ${SESSIONS} idle sessions...`);
    results.dovecot!.idleKbPerSession = Number(
      (
        await idleMemory(src.ports.imap, () => [src.pid, ...childrenOf(src.pid)])
      ).perSessionKb.toFixed(1),
    );

    const d = results.dovecot!;
    const lines = [
      `mailbox ${MB} MB, ${CLIENTS} parallel login clients for ${SECONDS} s, ${SESSIONS} idle sessions`,
      `${'target'.padEnd(10)} ${'logins/s'.padStart(9)} ${'vs direct'.padStart(10)} ${'fetch s'.padStart(8)} ${'MB/s'.padStart(7)} ${'speed vs direct'.padStart(16)} ${'KB/idle session'.padStart(16)}`,
      ...Object.entries(results).map(
        ([n, r]) =>
          `${n.padEnd(10)} ${String(r.loginsPerSec).padStart(9)} ${ratio(r.loginsPerSec, d.loginsPerSec).padStart(10)} ${r.fetchSeconds.toFixed(2).padStart(8)} ${r.fetchMBps.toFixed(1).padStart(7)} ${ratio(d.fetchSeconds, r.fetchSeconds).padStart(16)} ${String(r.idleKbPerSession ?? '-').padStart(16)}`,
      ),
      'goals: logins >= 0.7x direct, fetch speed >= 0.9x direct, <= 30 KB per idle session',
    ];
    process.stdout.write(
      `${lines.join('\n')}\n${JSON.stringify({ bench: 'proxy', mb: MB, sessions: SESSIONS, results })}\n`,
    );
  } finally {
    gw?.kill('SIGTERM');
    await nginx?.stop();
    await src.stop();
  }
}

await main();
