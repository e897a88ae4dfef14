/**
 * Running a daemon's master process as our own child, and making sure that it and every
 * process it forked are gone when we stop it (or when this process ends).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { onProcessExit } from './tmp.js';

/** The state letter from /proc/PID/stat, or undefined when the process does not exist. */
function procState(pid: number): { state: string; ppid: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // comm (field 2) is in parentheses and may contain spaces: split after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0] ?? '?', ppid: Number(rest[1]) };
  } catch {
    return undefined;
  }
}

/**
 * True while `pid` runs. A zombie counts as gone: it holds no resources, and processes that
 * were re-parented to this sandbox's init may stay zombies because that init does not reap.
 */
export function isRunning(pid: number): boolean {
  const s = procState(pid);
  return s !== undefined && s.state !== 'Z' && s.state !== 'X';
}

/** `pid` and all its live descendants, found by walking /proc (parents first). */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = procState(Number(name));
    if (!s || s.state === 'Z') continue;
    const list = children.get(s.ppid) ?? [];
    list.push(Number(name));
    children.set(s.ppid, list);
  }
  const out: number[] = [];
  const walk = (p: number): void => {
    if (!isRunning(p)) return;
    out.push(p);
    for (const c of children.get(p) ?? []) walk(c);
  };
  walk(pid);
  return out;
}

function signalAll(pids: number[], signal: NodeJS.Signals): void {
  for (const p of pids) {
    try {
      process.kill(p, signal);
    } catch {
      /* already gone */
    }
  }
}

export interface Daemon {
  readonly pid: number;
  readonly child: ChildProcess;
  /** resolves when the master process has exited */
  readonly exited: Promise<number | null>;
  running(): boolean;
  /** the master and every process it forked that still runs */
  pids(): number[];
  /** SIGTERM the whole tree, wait for it to go (SIGKILL after `graceMs`); idempotent */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Start `cmd` in the foreground as our child, stdout and stderr appended to `logFile`.
 * Dovecot stays in our process group, so a Ctrl-C in a terminal reaches it too; Postfix's
 * master starts its own session, and the signal hook of tmp.ts ends it instead.
 */
export function startDaemon(cmd: string, args: string[], logFile: string): Daemon {
  const fd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(cmd, args, { stdio: ['ignore', fd, fd] });
  } finally {
    closeSync(fd);
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${cmd}: no PID (is it installed?)`);
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code, sig) => {
      exitCode = code ?? (sig ? -1 : null);
      resolve(exitCode);
    });
    child.once('error', () => {
      exitCode = -1;
      resolve(-1);
    });
  });
  // Do not keep this process alive for the daemon's sake: a test that forgets stop() must
  // still end, and then the exit hook below ends the daemon.
  child.unref();
  // At process exit there is no time to wait for a graceful stop, and the temp dirs are
  // removed right after: SIGKILL the whole tree so nothing writes into them any more.
  const unregister = onProcessExit(() => signalAll(processTree(pid), 'SIGKILL'));
  let stopping: Promise<void> | undefined;

  const stop = (graceMs = 5000): Promise<void> => {
    stopping ??= (async () => {
      const tree = processTree(pid);
      // The whole tree at once: Dovecot's master alone waits ~1 s for its log process.
      signalAll(tree, 'SIGTERM');
      const deadline = Date.now() + graceMs;
      const alive = (): number[] => tree.filter(isRunning);
      while (exitCode === undefined || alive().length > 0) {
        if (Date.now() > deadline) {
          signalAll([pid, ...alive()], 'SIGKILL');
          await Promise.race([exited, sleep(1000)]);
          break;
        }
        await sleep(25);
      }
      unregister();
    })();
    return stopping;
  };

  return {
    pid,
    child,
    exited,
    running: () => exitCode === undefined && isRunning(pid),
    pids: () => processTree(pid),
    stop,
  };
}
