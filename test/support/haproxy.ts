/**
 * A real HAProxy (Debian package haproxy) in TCP mode on free loopback ports, in a temp
 * dir, as our child in the foreground (-db): one frontend per route, each forwarding to a
 * backend with `send-proxy` (PROXY protocol v1) or `send-proxy-v2`. Stopped by PID on
 * every path (stop(), or the exit hook of process.ts).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { freePort, LOOPBACK, releasePorts } from './ports.js';
import { startDaemon, type Daemon } from './process.js';
import { makeTempDir, onProcessExit, removeDir } from './tmp.js';

export const HAPROXY_BIN = '/usr/sbin/haproxy';

export interface HaproxyRoute {
  name: string;
  /** where HAProxy forwards to (the gateway's listener) */
  to: { host: string; port: number };
  proxy: 'v1' | 'v2';
}

export interface HaproxyInstance {
  /** the port clients connect to, by route name */
  ports: Record<string, number>;
  logFile: string;
  daemon: Daemon;
  stop(): Promise<void>;
}

function config(routes: HaproxyRoute[], ports: Record<string, number>): string {
  const out = [
    'global',
    '  maxconn 256',
    'defaults',
    '  mode tcp',
    '  timeout connect 3s',
    '  timeout client 30s',
    '  timeout server 30s',
  ];
  for (const r of routes) {
    out.push(
      `frontend f_${r.name}`,
      `  bind ${LOOPBACK}:${ports[r.name]}`,
      `  default_backend b_${r.name}`,
      `backend b_${r.name}`,
      `  server gw ${r.to.host}:${r.to.port} ${r.proxy === 'v1' ? 'send-proxy' : 'send-proxy-v2'}`,
    );
  }
  return `${out.join('\n')}\n`;
}

/** Listening once every frontend accepts a TCP connection. */
async function waitListening(ports: number[], daemon: Daemon, logFile: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (const port of ports) {
    for (;;) {
      const ok = await new Promise<boolean>((resolve) => {
        const s = connect({ port, host: LOOPBACK });
        s.once('connect', () => {
          s.destroy();
          resolve(true);
        });
        s.once('error', () => resolve(false));
      });
      if (ok) break;
      if (!daemon.running() || Date.now() > deadline)
        throw new Error(`haproxy did not start:\n${readFileSync(logFile, 'utf8')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

export async function startHaproxy(routes: HaproxyRoute[]): Promise<HaproxyInstance> {
  const dir = makeTempDir('haproxy');
  const unregister = onProcessExit(() => removeDir(dir));
  const ports: Record<string, number> = {};
  for (const r of routes) ports[r.name] = await freePort();
  const cfg = join(dir, 'haproxy.cfg');
  const logFile = join(dir, 'haproxy.log');
  writeFileSync(cfg, config(routes, ports));
  const daemon = startDaemon(HAPROXY_BIN, ['-db', '-f', cfg], logFile);
  const stop = async (): Promise<void> => {
    await daemon.stop();
    releasePorts(Object.values(ports));
    unregister();
    removeDir(dir);
  };
  try {
    await waitListening(Object.values(ports), daemon, logFile);
  } catch (err) {
    await stop();
    throw err;
  }
  return { ports, logFile, daemon, stop };
}
