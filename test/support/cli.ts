/**
 * Running the built CLI (`bin/run.js`) from tests. `npm test` builds first; a single-file
 * run builds here when dist/ is missing or older than src/.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(fileURLToPath(import.meta.url), '../../..');

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    newest = Math.max(newest, st.isDirectory() ? newestMtime(p) : st.mtimeMs);
  }
  return newest;
}

export function ensureBuilt(): void {
  const built = join(ROOT, 'dist/commands');
  if (existsSync(built) && newestMtime(built) >= newestMtime(join(ROOT, 'src'))) return;
  execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'pipe' });
}

/** Run `autoport <args>`; `input` goes to its standard input (e.g. --password-stdin). */
export function runCli(
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {},
): Promise<CliRun> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/run.js'), ...args], {
      cwd: ROOT,
      env: { ...process.env, ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', fail);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code: code ?? 1, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/**
 * A config for CLI tests that never reach a mail server (the source and destination are
 * closed loopback ports): state (default a JSON file) and logs in `dir`, plus `extra`
 * top-level YAML lines.
 * Returns the config file's path.
 */
export function writeOfflineConfig(
  dir: string,
  extra: string[] = [],
  state: string = join(dir, 'state.json'),
): string {
  const file = join(dir, 'autoport.yaml');
  writeFileSync(
    file,
    [
      'source:',
      '  imap: imap://127.0.0.1:1143',
      'destination:',
      '  imap: imap://127.0.0.1:2143',
      '  provision:',
      '    kind: none',
      'domains: [example.org]',
      `state: ${state}`,
      `logDir: ${join(dir, 'logs')}`,
      ...extra,
      '',
    ].join('\n'),
  );
  return file;
}
