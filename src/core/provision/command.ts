/**
 * Provisioner that runs an administrator-given command: argv from the config with
 * the address appended as the last argument, the password on stdin followed by a
 * newline (never in argv or the environment, where other local users could read it).
 * The command runs in its own process group; on timeout the whole group is stopped.
 * Exit 0 = done; anything else is an error carrying the command's stderr, with any
 * echo of the password masked.
 */
import { spawn } from 'node:child_process';
import { ProvisionError } from './hash.js';
import type { Provisioner } from './types.js';

export interface CommandOptions {
  command: string[];
  /** default 60 s; then SIGTERM, and SIGKILL 2 s later */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

const MAX_STDERR = 4096;

function mask(text: string, secret: string): string {
  return secret ? text.split(secret).join('***') : text;
}

export function makeCommandProvisioner(opts: CommandOptions): Provisioner {
  const argv = opts.command;
  const bin = argv[0];
  if (!bin)
    throw new ProvisionError(
      'provision.command must be a non-empty list: the program and its arguments',
      true,
    );
  const timeoutMs = opts.timeoutMs ?? 60_000;
  return {
    kind: 'command',
    provision(address: string, password: string): Promise<void> {
      return new Promise((resolve, reject) => {
        const child = spawn(bin, [...argv.slice(1), address], {
          stdio: ['pipe', 'ignore', 'pipe'],
          env: opts.env ?? process.env,
          // own process group, so a timeout also stops what the script started
          detached: true,
        });
        const killGroup = (sig: NodeJS.Signals): void => {
          try {
            if (child.pid) process.kill(-child.pid, sig);
          } catch {
            // already gone
          }
        };
        let stderr = '';
        let timedOut = false;
        const killTimer = setTimeout(() => {
          timedOut = true;
          killGroup('SIGTERM');
          setTimeout(() => killGroup('SIGKILL'), 2000).unref();
        }, timeoutMs);
        child.stderr.setEncoding('utf8').on('data', (d: string) => {
          if (stderr.length < MAX_STDERR) stderr += d;
        });
        child.on('error', (err: NodeJS.ErrnoException) => {
          clearTimeout(killTimer);
          reject(
            new ProvisionError(
              err.code === 'ENOENT'
                ? `provision command ${JSON.stringify(bin)} was not found; check provision.command in the config`
                : `provision command ${JSON.stringify(bin)} could not be started: ${err.message}`,
              err.code === 'ENOENT' || err.code === 'EACCES',
            ),
          );
        });
        child.on('close', (code, signal) => {
          clearTimeout(killTimer);
          if (code === 0) return resolve();
          const why = timedOut
            ? `timed out after ${timeoutMs} ms`
            : signal
              ? `was killed by ${signal}`
              : `exited with ${code}`;
          const detail = mask(stderr.slice(0, MAX_STDERR).trim(), password);
          reject(
            new ProvisionError(
              `provision command for ${address} ${why}${detail ? `: ${detail}` : ''}`,
            ),
          );
        });
        // A command that does not read stdin closes it early: not our error.
        child.stdin.on('error', () => undefined);
        child.stdin.end(`${password}\n`);
      });
    },
  };
}
