/**
 * Tell systemd (Type=notify) that the gateway is ready, once its listeners are open.
 *
 * Node cannot send the AF_UNIX datagram of sd_notify(3) itself, so this runs
 * `systemd-notify --ready`, which needs NotifyAccess=all (deploy/autoport.service): the
 * message comes from a child, not from the main process. A child that exits before PID 1
 * reads its message could not be attributed to the unit and the message was dropped;
 * since systemd 246 systemd-notify waits for sd_notify_barrier() (unless --no-block), so
 * it exits only once PID 1 has processed it. --pid names the gateway as the main process,
 * whatever started it (a wrapper script, env).
 *
 * Only when NOTIFY_SOCKET is set: elsewhere (a terminal, Type=simple) there is no one to
 * tell, and systemd-notify would fail.
 */
import { spawn } from 'node:child_process';
import type { Logger } from '../log/logger.js';

export type ReadinessResult = 'not-asked' | 'notified' | 'failed';

export interface ReadinessOptions {
  logger: Logger;
  /** shown by `systemctl status` */
  status: string;
  env?: NodeJS.ProcessEnv;
  pid?: number;
  /** systemd-notify waits for PID 1; a stuck one must not be left behind */
  timeoutMs?: number;
}

export function notifyReady(opts: ReadinessOptions): Promise<ReadinessResult> {
  const env = opts.env ?? process.env;
  if (!env.NOTIFY_SOCKET) return Promise.resolve('not-asked');
  const args = ['--ready', `--pid=${opts.pid ?? process.pid}`, `--status=${opts.status}`];
  return new Promise((resolve) => {
    let settled = false;
    const done = (result: ReadinessResult, why?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (why)
        opts.logger.error('could not tell systemd that the gateway is ready', {
          detail: why,
          hint: 'systemd-notify (package systemd) must be on PATH, and the unit needs NotifyAccess=all',
        });
      resolve(result);
    };
    const child = spawn('systemd-notify', args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (s: string) => {
      if (stderr.length < 2000) stderr += s;
    });
    const timer = setTimeout(() => {
      child.kill();
      done('failed', 'systemd-notify did not finish in time');
    }, opts.timeoutMs ?? 30_000);
    timer.unref();
    child.on('error', (err) => done('failed', err.message));
    child.on('close', (code, signal) => {
      if (code === 0) done('notified');
      else done('failed', `systemd-notify exited with ${signal ?? code}: ${stderr.trim()}`);
    });
  });
}
