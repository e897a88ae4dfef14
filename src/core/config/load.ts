/**
 * loadConfig: YAML text -> validated, resolved Config. Relative paths are taken relative to
 * the config file's folder (so a config and its files can move together), secrets are read
 * from files or the environment, and every problem found is reported at once.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { OperatorError } from '../errors.js';
import { hostPort } from './endpoint.js';
import { ConfigError, problemsFromZod, showValue, type ConfigProblem } from './issues.js';
import { configSchema, IMPLICIT_TLS_LISTENERS, type ParsedConfig } from './schema.js';
import { readSecret } from './secrets.js';
import { resolveState } from './state-setting.js';
import type { Config, MasterUser } from './types.js';

export const DEFAULT_CONFIG_PATH = '/etc/autoport/autoport.yaml';
export const CONFIG_ENV = 'AUTOPORT_CONFIG';

/** --config flag, else $AUTOPORT_CONFIG, else /etc/autoport/autoport.yaml; made absolute. */
export function resolveConfigPath(flag?: string, env: NodeJS.ProcessEnv = process.env): string {
  return resolve(flag || env[CONFIG_ENV] || DEFAULT_CONFIG_PATH);
}

export interface LoadOptions {
  /** where passwordEnv secrets are read (default process.env) */
  env?: NodeJS.ProcessEnv;
}

export function loadConfig(path?: string, options: LoadOptions = {}): Config {
  const env = options.env ?? process.env;
  const file = resolveConfigPath(path, env);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new OperatorError(
        `no config file at ${file}`,
        `run \`autoport init${file === DEFAULT_CONFIG_PATH ? '' : ` --config ${file}`}\` to write one, or pass --config / set ${CONFIG_ENV}`,
        'ENOCONFIG',
      );
    }
    throw new OperatorError(
      `cannot read config ${file}: ${code ?? String(err)}`,
      'check the path and that this user may read it',
      'ENOCONFIG',
    );
  }
  return parseConfigText(text, file, env);
}

/** Validate config text as if it were the file `file` (used by loadConfig and tests). */
export function parseConfigText(
  text: string,
  file: string,
  env: NodeJS.ProcessEnv = process.env,
): Config {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => ({
        path: e.linePos ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}` : 'YAML',
        problem: `${(e.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '')} (YAML syntax)`,
      })),
    );
  }
  const raw: unknown = doc.toJS();
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(file, [
      {
        path: '(top level)',
        value: showValue(raw ?? null),
        problem:
          'the config must be a YAML mapping (key: value lines); `autoport init` writes a template',
      },
    ]);
  }
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success)
    throw new ConfigError(file, problemsFromZod(parsed.error, configSchema, raw));
  const problems = crossChecks(parsed.data);
  const base = dirname(file);
  const abs = (p: string): string => (isAbsolute(p) ? p : resolve(base, p));
  const warnings: string[] = [];

  let master: MasterUser | undefined;
  const m = parsed.data.destination.master;
  if (m) {
    const secret = readSecret(
      {
        passwordFile: m.passwordFile === undefined ? undefined : abs(m.passwordFile),
        passwordEnv: m.passwordEnv,
      },
      env,
    );
    if (secret.ok) {
      master = { user: m.user, password: secret.value, separator: m.separator };
      if (secret.warning) warnings.push(`destination.master.passwordFile: ${secret.warning}`);
    } else {
      const key = secret.key ?? 'passwordFile';
      problems.push({
        path: `destination.master.${key}`,
        value: showValue(m[key]),
        problem: secret.problem,
      });
    }
  }
  const stateSetting = resolveState(parsed.data, abs, base, env);
  if (!stateSetting.ok) problems.push(stateSetting.problem);
  else if (stateSetting.warning) warnings.push(stateSetting.warning);
  if (problems.length > 0 || !stateSetting.ok) throw new ConfigError(file, problems);

  const d = parsed.data;
  const provision = { ...d.destination.provision };
  if (provision.kind === 'passwd-file') provision.path = abs(provision.path);
  const { stateDir } = stateSetting.value;
  const source = { ...d.source, useImap: d.source.useImap ?? d.source.imap !== undefined };
  // The submission key means submission whatever the scheme: relaying there needs AUTH.
  if (source.submission) source.submission = { ...source.submission, submission: true };
  const { master: _masterRef, ...destinationEndpoints } = d.destination;
  const destination: Config['destination'] = { ...destinationEndpoints, provision };
  if (destination.submission)
    destination.submission = { ...destination.submission, submission: true };
  if (master) destination.master = master;
  const config: Config = {
    file,
    source,
    destination,
    listen: d.listen,
    domains: d.domains,
    strategy: d.strategy,
    ...stateSetting.value,
    node: d.node,
    keyFile: abs(d.keyFile),
    logDir: d.logDir === undefined ? stateDir : abs(d.logDir),
    transfer: d.transfer,
    gateway: d.gateway,
    smtp: d.smtp,
    control: {
      socket:
        d.control.socket === undefined ? join(stateDir, 'autoport.sock') : abs(d.control.socket),
      metrics: d.control.metrics,
    },
    timeouts: d.timeouts,
  };
  if (d.proxyProtocol) config.proxyProtocol = d.proxyProtocol;
  if (d.brakes) {
    config.brakes = d.brakes;
    warnings.push(...wideTrustWarnings(d.brakes.trusted));
  }
  if (d.tls) config.tls = { cert: abs(d.tls.cert), key: abs(d.tls.key) };
  if (warnings.length > 0) config.warnings = warnings;
  return config;
}

/** Rules that span several keys; zod checked each key alone. */
function crossChecks(d: ParsedConfig): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const missing = '(missing)';
  if (!d.tls) {
    const needing = IMPLICIT_TLS_LISTENERS.filter((k) => d.listen[k] !== undefined);
    if (needing.length > 0) {
      out.push({
        path: 'tls',
        value: missing,
        problem: `listen.${needing.join(', listen.')} ${needing.length === 1 ? 'starts TLS at connect and needs' : 'start TLS at connect and need'} a certificate: add tls: { cert: cert.pem, key: key.pem }`,
      });
    }
  }
  const { source, destination, listen } = d;
  if (!source.imap && !source.pop3) {
    out.push({
      path: 'source',
      value: '(no imap, no pop3)',
      problem: 'give source.imap or source.pop3: the server accounts move from',
    });
  } else if (source.useImap === true && !source.imap) {
    out.push({
      path: 'source.useImap',
      value: 'true',
      problem: 'copying over IMAP needs source.imap',
    });
  } else if (source.useImap === false && !source.pop3) {
    out.push({
      path: 'source.useImap',
      value: 'false',
      problem: 'copying over POP3 needs source.pop3',
    });
  }
  if (listen.smtp !== undefined) {
    if (!destination.smtp) {
      out.push({
        path: 'destination.smtp',
        value: missing,
        problem:
          'listen.smtp is set, so mail for moved accounts needs a destination: lmtp://host:24 or smtp://host:25',
      });
    }
    if (!source.smtp) {
      out.push({
        path: 'source.smtp',
        value: missing,
        problem:
          'listen.smtp is set, so mail for accounts not yet moved needs the source: smtp://host:25',
      });
    }
  }
  for (const name of d.proxyProtocol?.listeners ?? []) {
    if (listen[name] === undefined)
      out.push({
        path: 'proxyProtocol.listeners',
        value: name,
        problem: `listen.${name} is not set, so there is no such listener to put behind a proxy`,
      });
  }
  const seen = new Map<string, string>();
  for (const [name, addr] of Object.entries(listen)) {
    if (!addr || addr.port === 0) continue;
    const key = hostPort(addr);
    const other = seen.get(key);
    if (other)
      out.push({
        path: `listen.${name}`,
        value: JSON.stringify(key),
        problem: `same address as listen.${other}`,
      });
    else seen.set(key, name);
  }
  return out;
}

/**
 * A trusted block as wide as a share of the Internet turns the per-address brakes off for
 * nearly every client: a slip (0.0.0.0/0 for 10.0.0.0/8) that leaves password guessing
 * unbraked, so it is said at every start and by `autoport check`.
 */
function wideTrustWarnings(trusted: readonly string[]): string[] {
  return trusted.flatMap((block, i) => {
    const [, bits] = block.split('/');
    const widest = block.includes(':') ? 16 : 8;
    if (bits === undefined || Number(bits) >= widest) return [];
    return [
      `brakes.trusted[${i}]: ${block} exempts a /${bits} from the per-address login brakes, ` +
        'almost every client; list only the webmail hosts and office NAT addresses',
    ];
  });
}
