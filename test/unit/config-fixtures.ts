/**
 * What the config tests share: the smallest config that loads, parsed with more YAML after
 * it, and the ConfigError lines of one that must be refused.
 */
import assert from 'node:assert/strict';
import { ConfigError, parseConfigText, type Config } from '../../src/core/config/index.js';

export const MINIMAL_CONFIG = `
source:
  imap: imaps://old.example.org
destination:
  imap: imaps://new.example.org
  provision: { kind: none }
domains: [example.org]
`;

export interface ParseAs {
  env?: NodeJS.ProcessEnv;
  /** where the file is said to be: relative paths resolve against its folder */
  file?: string;
}

/** MINIMAL_CONFIG with `extra` after it (a key it already has is a YAML error: add new ones). */
export function parseMinimal(extra = '', as: ParseAs = {}): Config {
  return parseConfigText(
    MINIMAL_CONFIG + extra,
    as.file ?? '/etc/autoport/autoport.yaml',
    as.env ?? {},
  );
}

/** The ConfigError lines, one string, of MINIMAL_CONFIG with `extra` (fails when it loads). */
export function refusal(extra: string, as: ParseAs = {}): string {
  try {
    parseMinimal(extra, as);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.lines.join('\n');
  }
  return assert.fail('the config must be refused');
}
