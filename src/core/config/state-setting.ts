/**
 * The `state` setting: a JSON state file, or a `postgresql://user@host:port/db` URL whose
 * password comes from statePasswordFile or statePasswordEnv like the config's other secrets
 * (a URL gets copied into tickets and logs; the password must not be in it). Also decides
 * the state folder: `stateDir`, else the state file's folder, else (URL) the config's.
 */
import { dirname } from 'node:path';
import { isStateUrl } from '../state/state-url.js';
import { showValue, type ConfigProblem } from './issues.js';
import type { ParsedConfig } from './schema.js';
import { readSecret } from './secrets.js';

export interface ResolvedState {
  state: string;
  stateDir: string;
  statePassword?: string;
}

type Outcome =
  { ok: true; value: ResolvedState; warning?: string } | { ok: false; problem: ConfigProblem };

/** `abs` resolves a path against the config file's folder (`base`). */
export function resolveState(
  d: Pick<ParsedConfig, 'state' | 'stateDir' | 'statePasswordFile' | 'statePasswordEnv'>,
  abs: (p: string) => string,
  base: string,
  env: NodeJS.ProcessEnv,
): Outcome {
  if (!isStateUrl(d.state)) {
    if (d.statePasswordFile !== undefined || d.statePasswordEnv !== undefined)
      return fail(
        d.statePasswordFile !== undefined ? 'statePasswordFile' : 'statePasswordEnv',
        'is only for a postgresql:// state; the JSON state file has no password',
      );
    const state = abs(d.state);
    return {
      ok: true,
      value: { state, stateDir: d.stateDir === undefined ? dirname(state) : abs(d.stateDir) },
    };
  }
  const url = parseUrl(d.state);
  if ('problem' in url) return fail('state', url.problem, url.shown);
  const stateDir = d.stateDir === undefined ? base : abs(d.stateDir);
  if (d.statePasswordFile === undefined && d.statePasswordEnv === undefined)
    return { ok: true, value: { state: url.url, stateDir } };
  const secret = readSecret(
    {
      passwordFile: d.statePasswordFile === undefined ? undefined : abs(d.statePasswordFile),
      passwordEnv: d.statePasswordEnv,
    },
    env,
  );
  if (!secret.ok) {
    const key = secret.key === 'passwordEnv' ? 'statePasswordEnv' : 'statePasswordFile';
    return fail(
      key,
      secret.problem,
      key === 'statePasswordEnv' ? d.statePasswordEnv : d.statePasswordFile,
    );
  }
  const value = { state: url.url, stateDir, statePassword: secret.value };
  return secret.warning
    ? { ok: true, value, warning: `statePasswordFile: ${secret.warning}` }
    : { ok: true, value };
}

function fail(path: string, problem: string, value?: string): Outcome {
  return {
    ok: false,
    problem: { path, problem, ...(value === undefined ? {} : { value: showValue(value) }) },
  };
}

/** The URL, or what is wrong with it (its password is never shown). */
function parseUrl(text: string): { url: string } | { problem: string; shown: string } {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return {
      problem: 'is not a URL; write it like postgresql://autoport@db.example.org:5432/autoport',
      shown: '(unparsable URL)',
    };
  }
  if (url.password !== '') {
    url.password = '***';
    return {
      problem:
        'carries a password; credentials never go in URLs (use statePasswordFile or statePasswordEnv)',
      shown: url.toString(),
    };
  }
  if (url.hostname === '' || url.pathname.length <= 1)
    return {
      problem: 'needs a host and a database: postgresql://user@host:5432/database',
      shown: url.toString(),
    };
  return { url: url.toString() };
}
