/**
 * `autoport init`: write the commented template and a fresh key. An existing key is never
 * replaced, even with --force: stored credentials sealed with it would become unreadable.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { OperatorError } from '../errors.js';
import { renderTemplate } from './template.js';

export interface InitOptions {
  /** absolute config path (see resolveConfigPath) */
  configPath: string;
  force?: boolean;
  /** writes a new key file with mode 0600 (src/core/state/crypto.ts generateKeyFile) */
  generateKey: (path: string) => Promise<unknown> | unknown;
}

export interface InitResult {
  configFile: string;
  /** true when an existing config was replaced (--force) */
  overwritten: boolean;
  keyFile: string;
  /** false when a key file was already there and was kept */
  keyCreated: boolean;
  nextSteps: string[];
}

/** Config in /etc/autoport: state under /var/lib as a service expects; elsewhere: beside it. */
function statePathFor(configPath: string): string {
  return dirname(configPath) === '/etc/autoport'
    ? '/var/lib/autoport/state.json'
    : 'state/state.json';
}

export async function initConfig(opts: InitOptions): Promise<InitResult> {
  const configFile = resolve(opts.configPath);
  const exists = existsSync(configFile);
  if (exists && !opts.force) {
    throw new OperatorError(
      `a config already exists at ${configFile}`,
      'edit it, or run `autoport init --force` to replace it with the template (the key file is kept)',
      'EEXIST',
    );
  }
  const keyName = 'autoport.key';
  const keyFile = resolve(dirname(configFile), keyName);
  try {
    mkdirSync(dirname(configFile), { recursive: true });
    writeFileSync(
      configFile,
      renderTemplate({ state: statePathFor(configFile), keyFile: keyName }),
      {
        mode: 0o644,
        flag: opts.force ? 'w' : 'wx',
      },
    );
  } catch (err) {
    throw new OperatorError(
      `cannot write ${configFile}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      'choose a writable place with --config <path>, or run as a user who may write there',
      'EWRITE',
      { cause: err },
    );
  }
  const keyCreated = !existsSync(keyFile);
  if (keyCreated) {
    try {
      await opts.generateKey(keyFile);
    } catch (err) {
      throw new OperatorError(
        `wrote ${configFile} but could not create the key file ${keyFile}: ${(err as Error).message}`,
        'check the folder is writable, then run `autoport init --force` again',
        'EWRITE',
        { cause: err },
      );
    }
  }
  return {
    configFile,
    overwritten: exists,
    keyFile,
    keyCreated,
    nextSteps: [
      `edit ${configFile}: source and destination servers, listen addresses, tls, domains`,
      `run \`autoport check${configFile === resolve('/etc/autoport/autoport.yaml') ? '' : ` --config ${configFile}`}\` to test both servers before any account moves`,
      `back up ${keyFile} with the state: without it captured passwords cannot be used`,
    ],
  };
}
