/**
 * The three ways the transfer benchmark moves the same accounts: AutoPort's CLI, Dovecot's
 * dsync (`doveadm backup -R` from an imapc: source), and mbsync. Each runs under
 * /usr/bin/time -v, which reports wall time and the peak RSS of the process.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DovecotInstance } from '../test/support/index.js';

export interface Account {
  user: string;
  password: string;
}

export interface RunStats {
  wallMs: number;
  /** AutoPort, one account: how long its switch locked it (the rest was pre-copy) */
  lockMs?: number;
  /** largest peak RSS of the measured processes, kB */
  maxRssKb: number;
  failures: string[];
}

const ROOT = join(import.meta.dirname, '..');

/** Run argv under /usr/bin/time -v; resolves with wall time and peak RSS. */
export function timed(
  argv: string[],
  opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<{
  wallMs: number;
  maxRssKb: number;
  code: number | null;
  stdout: string;
  stderr: string;
}> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const child = spawn('/usr/bin/time', ['-v', ...argv], {
      env: opts.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr);
      // what the tool itself said, without time's report
      const own = stderr
        .slice(0, Math.max(0, stderr.lastIndexOf('\tCommand being timed')))
        .replace(/Command exited with non-zero status \d+\s*$/, '');
      resolve({
        wallMs: Date.now() - t0,
        maxRssKb: rss ? Number(rss[1]) : 0,
        code,
        stdout,
        stderr: `${own.trim()} ${stdout.slice(-400)}`.trim(),
      });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** Run jobs with at most `n` at once; wall time is the whole batch's. */
export async function batch<T>(
  items: T[],
  n: number,
  run: (item: T) => Promise<{ maxRssKb: number; failure?: string }>,
): Promise<RunStats> {
  const t0 = Date.now();
  const queue = [...items];
  const stats: RunStats = { wallMs: 0, maxRssKb: 0, failures: [] };
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      for (let it = queue.shift(); it !== undefined; it = queue.shift()) {
        const r = await run(it);
        stats.maxRssKb = Math.max(stats.maxRssKb, r.maxRssKb);
        if (r.failure) stats.failures.push(r.failure);
      }
    }),
  );
  stats.wallMs = Date.now() - t0;
  return stats;
}

export async function runAutoport(
  configFile: string,
  accounts: Account[],
  concurrency: number,
  timeoutMs: number,
): Promise<RunStats> {
  const bin = join(ROOT, 'bin', 'run.js');
  if (accounts.length === 1) {
    const a = accounts[0] as Account;
    const r = await timed(
      [
        process.execPath,
        bin,
        'migrate',
        a.user,
        '--password-stdin',
        '--json',
        '--config',
        configFile,
      ],
      { input: a.password, timeoutMs },
    );
    return {
      wallMs: r.wallMs,
      lockMs: lockOf(r.stdout),
      maxRssKb: r.maxRssKb,
      failures: r.code === 0 ? [] : [`autoport ${a.user}: exit ${r.code}: ${r.stderr.slice(-800)}`],
    };
  }
  const r = await timed(
    [
      process.execPath,
      bin,
      'migrate',
      '--all',
      '--concurrency',
      String(concurrency),
      '--json',
      '--config',
      configFile,
    ],
    { timeoutMs },
  );
  return {
    wallMs: r.wallMs,
    maxRssKb: r.maxRssKb,
    failures: r.code === 0 ? [] : [`autoport --all: exit ${r.code}: ${r.stderr.slice(-800)}`],
  };
}

/** The switch's lock from `migrate --json` (the AccountResult). */
function lockOf(stdout: string): number | undefined {
  try {
    const ms = (JSON.parse(stdout) as { lock?: { ms?: number } }).lock?.ms;
    return typeof ms === 'number' ? ms : undefined;
  } catch {
    return undefined;
  }
}

/** dsync: Dovecot's own IMAP migration, into the destination instance's storage directly. */
export async function runDsync(
  src: DovecotInstance,
  dst: DovecotInstance,
  accounts: Account[],
  concurrency: number,
  timeoutMs: number,
): Promise<RunStats> {
  return batch(accounts, concurrency, async (a) => {
    const r = await timed(
      [
        'doveadm',
        '-c',
        dst.confFile,
        '-o',
        `imapc_host=${src.host}`,
        '-o',
        `imapc_port=${src.ports.imap}`,
        '-o',
        `imapc_user=${a.user}`,
        '-o',
        `imapc_password=${a.password}`,
        '-o',
        'imapc_features=rfc822.size fetch-headers modseq',
        '-o',
        'mail_prefetch_count=20',
        'backup',
        '-R',
        '-u',
        a.user,
        'imapc:',
      ],
      { timeoutMs },
    );
    return {
      maxRssKb: r.maxRssKb,
      failure:
        r.code === 0 ? undefined : `dsync ${a.user}: exit ${r.code}: ${r.stderr.slice(-800)}`,
    };
  });
}

/** mbsync (isync): pulls every folder from the source into the destination over IMAP. */
export async function runMbsync(
  src: DovecotInstance,
  dst: DovecotInstance,
  accounts: Account[],
  concurrency: number,
  dir: string,
  timeoutMs: number,
): Promise<RunStats> {
  return batch(accounts, concurrency, async (a) => {
    const safe = a.user.replace(/[^a-z0-9]/gi, '_');
    const conf = join(dir, `mbsync-${safe}.rc`);
    mkdirSync(join(dir, `mbsync-state-${safe}`), { recursive: true });
    const store = (name: string, inst: DovecotInstance): string =>
      [
        `IMAPAccount ${name}`,
        `Host ${inst.host}`,
        `Port ${inst.ports.imap}`,
        `User ${a.user}`,
        `Pass ${a.password}`,
        'SSLType None',
        'AuthMechs LOGIN',
        'PipelineDepth 50',
        '',
        `IMAPStore ${name}-store`,
        `Account ${name}`,
        '',
      ].join('\n');
    writeFileSync(
      conf,
      [
        store('src', src),
        store('dst', dst),
        'Channel all',
        'Far :src-store:',
        'Near :dst-store:',
        'Patterns *',
        'Create Near',
        'Sync Pull',
        'CopyArrivalDate yes',
        'Expunge None',
        `SyncState ${join(dir, `mbsync-state-${safe}`)}/`,
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    const r = await timed(['mbsync', '-c', conf, '-a', '-q'], { timeoutMs });
    return {
      maxRssKb: r.maxRssKb,
      failure:
        r.code === 0 ? undefined : `mbsync ${a.user}: exit ${r.code}: ${r.stderr.slice(-800)}`,
    };
  });
}
