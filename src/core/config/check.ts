/**
 * `autoport config check` and `config show`: the file validated without connecting anywhere
 * (like `nginx -t` or `postfix check`), and the effective config with defaults filled in and
 * secrets hidden (like `doveconf -n`). Beyond the schema, check looks at what the gateway
 * will open at start: TLS certificate and key, the key file, and the folders it writes.
 */
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { dirname } from 'node:path';
import { loadKeyring } from '../state/crypto.js';
import { isStateUrl } from '../state/state-url.js';
import { KeyFileError } from '../state/errors.js';
import { OperatorError } from '../errors.js';
import { ConfigError, formatProblem, type ConfigProblem } from './issues.js';
import { loadConfig } from './load.js';
import type { Config } from './types.js';

export interface ConfigCheckResult {
  ok: boolean;
  file: string;
  /** what would stop `autoport proxy` from starting */
  problems: ConfigProblem[];
  /** what works but should be fixed */
  warnings: string[];
  /** the validated config (undefined when the file itself does not validate) */
  config?: Config;
}

/** The folder, or its nearest existing parent when the gateway would create it (mkdir -p). */
function nearestExisting(path: string): string {
  let p = path;
  while (!existsSync(p) && dirname(p) !== p) p = dirname(p);
  return p;
}

function writableDir(path: string, key: string): ConfigProblem | undefined {
  const at = nearestExisting(path);
  try {
    accessSync(at, constants.W_OK | constants.X_OK);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    return {
      path: key,
      value: path,
      problem: `${at === path ? 'folder' : `cannot be created: ${at}`} is not writable by this user (${code}); give it to the user that runs autoport`,
    };
  }
}

function tlsProblems(tls: NonNullable<Config['tls']>): ConfigProblem[] {
  try {
    createSecureContext({ cert: readFileSync(tls.cert), key: readFileSync(tls.key) });
    return [];
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return [
      {
        path: 'tls',
        value: `${tls.cert}, ${tls.key}`,
        problem: `${e.code === 'ENOENT' || e.code === 'EACCES' ? `cannot read (${e.code})` : `not a usable certificate and key (${e.message})`}`,
      },
    ];
  }
}

function keyFileProblems(keyFile: string): ConfigProblem[] {
  try {
    loadKeyring(keyFile);
    return [];
  } catch (err) {
    const problem =
      err instanceof KeyFileError || err instanceof OperatorError
        ? err.message
        : `cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)}); the user that runs autoport must own it`;
    return [{ path: 'keyFile', value: keyFile, problem }];
  }
}

/** Everything `proxy` opens at start, checked on disk; nothing is written or connected. */
function fileProblems(c: Config): ConfigProblem[] {
  const found: (ConfigProblem | undefined)[] = [
    ...keyFileProblems(c.keyFile),
    ...(c.tls ? tlsProblems(c.tls) : []),
    writableDir(c.stateDir, isStateUrl(c.state) ? 'stateDir' : 'state'),
    writableDir(c.logDir, 'logDir'),
  ];
  const socketDir = c.control?.socket && dirname(c.control.socket);
  // systemd's RuntimeDirectory= makes /run/autoport (as the service's user) just before the
  // service starts; until then only root could create it there.
  if (socketDir && !(socketDir.startsWith('/run/') && !existsSync(socketDir)))
    found.push(writableDir(socketDir, 'control.socket'));
  const p = c.destination.provision;
  if (p.kind === 'passwd-file' && p.path) {
    // The provisioner writes a temp file and a lock beside the passwd-file, then renames.
    found.push(writableDir(dirname(p.path), 'destination.provision.path'));
  }
  return found.filter((x): x is ConfigProblem => x !== undefined);
}

export function checkConfig(
  path?: string,
  env: NodeJS.ProcessEnv = process.env,
): ConfigCheckResult {
  let config: Config;
  try {
    config = loadConfig(path, { env });
  } catch (err) {
    if (err instanceof ConfigError) {
      return { ok: false, file: err.file, problems: err.problems, warnings: [] };
    }
    throw err;
  }
  const problems = fileProblems(config);
  const socketDir = config.control?.socket && dirname(config.control.socket);
  const runtime =
    socketDir && socketDir.startsWith('/run/') && !existsSync(socketDir)
      ? [
          `control.socket: ${socketDir} does not exist yet; systemd's RuntimeDirectory= creates it when the service starts`,
        ]
      : [];
  return {
    ok: problems.length === 0,
    file: config.file,
    problems,
    warnings: [...(config.warnings ?? []), ...runtime],
    config,
  };
}

export const HIDDEN = '(hidden)';

/**
 * The effective config as plain data for YAML or JSON: endpoints as their URLs, defaults
 * filled in, every secret replaced by HIDDEN.
 */
export function effectiveConfig(c: Config): Record<string, unknown> {
  const side = (s: Config['source'] | Config['destination']): Record<string, unknown> =>
    Object.fromEntries(
      Object.entries(s).map(([k, v]) => [
        k,
        v && typeof v === 'object' && 'url' in v ? (v as { url: string }).url : v,
      ]),
    );
  const destination = side(c.destination);
  if (c.destination.master) destination.master = { ...c.destination.master, password: HIDDEN };
  const statePassword = c.statePassword === undefined ? {} : { statePassword: HIDDEN };
  const listen = Object.fromEntries(
    Object.entries(c.listen).map(([k, v]) => [k, `${v.host}:${v.port}`]),
  );
  const control = c.control && {
    socket: c.control.socket,
    metrics: c.control.metrics && `${c.control.metrics.host}:${c.control.metrics.port}`,
  };
  const { file: _file, warnings: _warnings, ...rest } = c;
  return { ...rest, ...statePassword, source: side(c.source), destination, listen, control };
}

export function formatCheck(r: ConfigCheckResult): string {
  const lines = [`${r.ok ? 'ok' : 'FAILED'}: ${r.file}`];
  for (const p of r.problems) lines.push(`  problem: ${formatProblem(p)}`);
  for (const w of r.warnings) lines.push(`  warning: ${w}`);
  return `${lines.join('\n')}\n`;
}
