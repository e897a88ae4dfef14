/**
 * The gateway under soak: the built CLI (`node bin/run.js proxy --config ...`) as a child
 * process with its own certificate, every listener and the metrics endpoint on free
 * loopback ports, and what the soak reads from outside: RSS and open descriptors from
 * /proc, gauges from /metrics, and free connection-limit slots by probing.
 *
 * No limit is raised: the CLI takes the defaults of src/core/limits.ts (1,000 connections
 * per address, 10,000 in total), which the soak stays under by spreading its clients over
 * ten addresses.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { stringify } from 'yaml';
import { freePorts, testTls, waitForGreeting } from '../../test/support/index.js';
import { watchChild } from '../child-exit.js';
import { ROOT } from '../../test/support/cli.js';
import { parseExposition } from '../../test/support/prometheus.js';
import type { SoakServers } from './servers.js';

export interface SoakGateway {
  pid: number;
  ports: { imap: number; imaps: number; pop3: number; submission: number; metrics: number };
  logFile: string;
  /** undefined while it runs; its exit code or signal once it died */
  exited(): string | undefined;
  /** ask it to collect garbage now */
  gc(): void;
  stop(): Promise<void>;
}

export async function startGateway(servers: SoakServers, dir: string): Promise<SoakGateway> {
  const { lab } = servers;
  const tls = await testTls();
  const [imap, imaps, pop3, submission, metrics] = (await freePorts(5)) as [
    number,
    number,
    number,
    number,
    number,
  ];
  const at = (p: number): string => `127.0.0.1:${p}`;
  const cfg = {
    source: {
      imap: lab.source.urls.imap,
      pop3: lab.source.urls.pop3,
      smtp: lab.mta.url,
      submission: `submission://127.0.0.1:${servers.submission.port}?tls=none`,
    },
    destination: {
      imap: lab.destination.urls.imap,
      pop3: lab.destination.urls.pop3,
      smtp: lab.destination.urls.lmtp,
      provision: { kind: 'none' },
    },
    listen: { imap: at(imap), imaps: at(imaps), pop3: at(pop3), submission: at(submission) },
    tls: { cert: tls.certFile, key: tls.keyFile },
    domains: lab.domains,
    strategy: 'proxy',
    state: join(dir, 'state.json'),
    keyFile: join(dir, 'autoport.key'),
    logDir: join(dir, 'log'),
    control: { socket: join(dir, 'control.sock'), metrics: at(metrics) },
  };
  const file = join(dir, 'autoport.yaml');
  writeFileSync(file, `# written by bench/soak/gateway.ts\n${stringify(cfg)}`);
  const cli = process.env.SOAK_CLI ?? join(ROOT, 'bin/run.js');
  // The key and the state are written by the build under test (its store format), and the
  // migrated accounts recorded before the gateway owns the state file.
  const state = (await import(
    pathToFileURL(join(dirname(cli), '../dist/core/state/index.js')).href
  )) as typeof import('../../src/core/state/index.js');
  await state.generateKeyFile(cfg.keyFile);
  const store = await state.openJsonStore(cfg.state);
  for (const a of servers.accounts.migrated) await store.upsert(a.user, { state: 'migrated' });
  await store.close();

  const logFile = join(dir, 'gateway.log');
  const fd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    // --no-workers: no account changes side during the soak, so a login never meets a
    // transfer's "try again later", which would be correct but not what is measured.
    child = spawn(
      process.execPath,
      [
        // SIGUSR2 collects garbage (as in bench/proxy.ts), so the readings taken at fixed
        // points (start, end, idle sessions) measure live memory, not the last GC's timing
        '--expose-gc',
        '--import',
        'data:text/javascript,process.on("SIGUSR2",()=>gc())',
        cli,
        'proxy',
        '--config',
        file,
        '--log-format',
        'json',
        '--log-level',
        'warn',
        '--grace',
        '2',
        '--no-workers',
      ],
      { cwd: dir, stdio: ['ignore', fd, fd] },
    );
  } finally {
    closeSync(fd);
  }
  const end = watchChild(child);
  const alive = (): boolean => end.exit() === undefined;
  try {
    for (const p of [imap, pop3])
      await waitForGreeting(p, /^(\* OK|\+OK)/, { alive, timeoutMs: 30_000 });
    await waitForGreeting(submission, /^220 /, { alive, timeoutMs: 30_000 });
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${(err as Error).message}\n${readFileSync(logFile, 'utf8').slice(-2000)}`);
  }
  return {
    pid: child.pid!,
    ports: { imap, imaps, pop3, submission, metrics },
    logFile,
    exited: end.exit,
    gc: () => void (end.exit() === undefined && child.kill('SIGUSR2')),
    stop: async () => void (await end.stop(10_000)),
  };
}

/** VmRSS in KB, or 0 when the process is gone. */
export function rssKb(pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** CPU seconds (user + system) the process has used (USER_HZ 100 ticks in /proc/<pid>/stat). */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
}

export function openFds(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return 0;
  }
}

/** The soft limit on open files of `pid`. */
export function fdLimit(pid: number): number {
  try {
    return Number(
      /^Max open files\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'))?.[1] ?? 0,
    );
  } catch {
    return 0;
  }
}

export interface GatewayGauges {
  sessionsOpen: number;
  /** a limiter slot gauge, if the gateway exports one (any metric named *slot*) */
  slots?: number;
}

/** Scrape /metrics on a fresh connection (keep-alive would hold a descriptor in the gateway). */
export function scrape(port: number): Promise<GatewayGauges> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/metrics',
        agent: false,
        headers: { connection: 'close' },
        timeout: 10_000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => {
          try {
            const e = parseExposition(body);
            const slotNames = [...e.types.keys()].filter((n) => /slot/.test(n));
            resolve({
              sessionsOpen: e.sum('autoport_sessions_open'),
              slots: slotNames.length ? slotNames.reduce((a, n) => a + e.sum(n), 0) : undefined,
            });
          } catch (err) {
            reject(err as Error);
          }
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('metrics scrape timed out')));
    req.on('error', reject);
    req.end();
  });
}

/**
 * How many connections one address may still open: open up to `max` plaintext IMAP
 * connections from `localAddress` at once and count those greeted with "* OK" (a refused
 * one gets "* BYE"). Slots leaked by earlier sessions show as fewer greetings.
 */
export async function probeSlots(port: number, localAddress: string, max: number): Promise<number> {
  const socks: ReturnType<typeof connect>[] = [];
  const greeted = await Promise.all(
    Array.from(
      { length: max },
      () =>
        new Promise<boolean>((resolve) => {
          const s = connect({ host: '127.0.0.1', port, localAddress });
          socks.push(s);
          let buf = '';
          const t = setTimeout(() => resolve(false), 15_000);
          s.setEncoding('latin1');
          s.on('data', (d: string) => {
            buf += d;
            if (buf.includes('\n')) {
              clearTimeout(t);
              resolve(buf.startsWith('* OK'));
            }
          });
          s.on('error', () => resolve(false));
          s.on('close', () => resolve(false));
        }),
    ),
  );
  for (const s of socks) s.destroy();
  await new Promise((r) => setTimeout(r, 500));
  return greeted.filter(Boolean).length;
}

/**
 * The gateway's warnings and errors, counted by message, most frequent first, with one
 * example each; lines that are not JSON (a crash's stack trace) follow as they are.
 */
export function logSummary(file: string, top = 8): string[] {
  const n = new Map<string, number>();
  const example = new Map<string, string>();
  const other: string[] = [];
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  for (const line of text.split('\n')) {
    if (!line) continue;
    let e: { level?: string; msg?: string };
    try {
      e = JSON.parse(line) as typeof e;
    } catch {
      if (other.length < 20) other.push(`        ${line.slice(0, 200)}`);
      continue;
    }
    const key = `${e.level ?? '?'}: ${e.msg ?? line}`;
    n.set(key, (n.get(key) ?? 0) + 1);
    if (!example.has(key)) example.set(key, line.slice(0, 400));
  }
  return [
    ...[...n]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, c]) => `${String(c).padStart(7)} x ${k}\n          e.g. ${example.get(k)}`),
    ...(other.length ? ['    not JSON (first 20 lines):', ...other] : []),
  ];
}
