/**
 * The real gateway on a state of many accounts: `node bin/run.js proxy` (the build in
 * dist/) with a config of its own, the IMAP listener and /healthz on free loopback ports,
 * the source and the destination the stand-in of state-imap.ts (logins only: a worker that
 * picks a captured account fails its transfer at once and marks it failed). Measured from
 * outside: spawn to /healthz answering 200 (the store opened, the worker pool started, the
 * listeners up), the process's RSS from /proc once started and after a login storm, and
 * the storm's login latency.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { freePorts } from '../test/support/ports.js';
import { ROOT } from '../test/support/cli.js';
import { watchChild } from './child-exit.js';
import { loginStorm, startStubSource } from './state-imap.js';
import { DOMAINS, median, percentile, r1, timed } from './state-records.js';

const START_TIMEOUT_MS = 120_000;
/** --grace 1: a gateway still there after this did not stop by itself */
const STOP_WAIT_MS = 5_000;

export interface GatewayFigures {
  /** spawn to /healthz 200 */
  startMs: number;
  rssAfterStartMB: number;
  logins: number;
  loginsFailed: number;
  firstLoginError?: string;
  loginP50Ms: number;
  loginP99Ms: number;
  loginsPerSec: number;
  rssAfterStormMB: number;
  peakRssMB: number;
  /** SIGTERM to exit, and how it exited */
  stopMs: number;
  exit: string;
}

/** VmRSS or VmHWM of a process, MB. */
function procMB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return r1(Number(m?.[1] ?? NaN) / 1024);
}

function healthy(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/healthz', timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

interface Running {
  child: ChildProcess;
  exited: () => string | undefined;
  /** SIGTERM, then SIGKILL if it is not gone within STOP_WAIT_MS; how it exited */
  stop(): Promise<string>;
}

function spawnGateway(configFile: string, logFile: string): Running {
  const fd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(
      process.execPath,
      [
        join(ROOT, 'bin/run.js'),
        'proxy',
        '--config',
        configFile,
        '--log-format',
        'json',
        '--log-level',
        process.env.BENCH_GATEWAY_LOG_LEVEL ?? 'warn',
        '--grace',
        '1',
      ],
      { stdio: ['ignore', fd, fd] },
    );
  } finally {
    closeSync(fd);
  }
  const end = watchChild(child);
  return {
    child,
    exited: end.exit,
    stop: () => end.stop(STOP_WAIT_MS),
  };
}

export interface GatewayRun {
  /** the state: a JSON file or a postgresql:// URL (no password: trust on loopback) */
  state: string;
  keyFile: string;
  dir: string;
  /** addresses the storm logs in as */
  addresses: string[];
  logins: number;
}

/** Start the gateway on `state`, time it, storm it, read its memory, stop it. */
export async function measureGateway(run: GatewayRun): Promise<GatewayFigures> {
  const source = await startStubSource();
  const [imap, metrics] = (await freePorts(2)) as [number, number];
  const at = (p: number): string => `127.0.0.1:${p}`;
  const cfg = {
    source: { imap: `imap://${at(source.port)}?tls=none` },
    // the stand-in too: a worker's transfer fails at its first LIST, both connections closed
    destination: { imap: `imap://${at(source.port)}?tls=none`, provision: { kind: 'none' } },
    listen: { imap: at(imap) },
    domains: DOMAINS,
    strategy: 'proxy',
    state: run.state,
    stateDir: run.dir,
    keyFile: run.keyFile,
    logDir: join(run.dir, 'log'),
    control: { socket: join(run.dir, 'control.sock'), metrics: at(metrics) },
  };
  const configFile = join(run.dir, 'autoport.yaml');
  writeFileSync(configFile, `# written by bench/state-gateway.ts\n${stringify(cfg)}`);
  const logFile = join(run.dir, 'gateway.log');
  const t0 = performance.now();
  const gw = spawnGateway(configFile, logFile);
  try {
    while (!(await healthy(metrics))) {
      const gone = gw.exited();
      if (gone !== undefined || performance.now() - t0 > START_TIMEOUT_MS)
        throw new Error(
          `gateway did not start (${gone ?? 'timeout'}):\n${readFileSync(logFile, 'utf8').slice(-3000)}`,
        );
      await sleep(10);
    }
    const startMs = performance.now() - t0;
    const pid = gw.child.pid as number;
    await sleep(1000); // what it does right after start (the worker pool's first tick) settles
    const rssAfterStartMB = procMB(pid, 'VmRSS');
    const storm = await loginStorm(imap, run.addresses, run.logins);
    const rssAfterStormMB = procMB(pid, 'VmRSS');
    const peakRssMB = procMB(pid, 'VmHWM');
    const [stopMs, exit] = await timed(() => gw.stop());
    return {
      stopMs: r1(stopMs),
      exit,
      startMs: r1(startMs),
      rssAfterStartMB,
      logins: storm.latencies.length,
      loginsFailed: storm.failed,
      ...(storm.firstError ? { firstLoginError: storm.firstError } : {}),
      loginP50Ms: r1(percentile(storm.latencies, 50)),
      loginP99Ms: r1(percentile(storm.latencies, 99)),
      loginsPerSec: Math.round((storm.latencies.length * 1000) / storm.ms),
      rssAfterStormMB,
      peakRssMB,
    };
  } finally {
    await gw.stop();
    await source.close();
  }
}

/** What any command of the CLI takes to start (`autoport --version`): the floor of a start. */
export async function cliStart(rounds = 3): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const [ms] = await timed(
      () =>
        new Promise<void>((resolve, reject) => {
          const c = spawn(process.execPath, [join(ROOT, 'bin/run.js'), '--version'], {
            stdio: 'ignore',
          });
          c.on('error', reject);
          c.on('exit', () => resolve());
        }),
    );
    times.push(ms);
  }
  return r1(median(times));
}
