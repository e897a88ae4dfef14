/**
 * src/core returns data and never draws: no file in it imports the CLI, the commands, the
 * TUI or a terminal library. eslint says the same (eslint.config.js), but a later eslint
 * block can silently replace the rule; this reads the import graph itself.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const CORE = join(ROOT, 'src/core');
const FORBIDDEN_DIRS = ['src/cli', 'src/commands', 'src/tui'].map((d) => join(ROOT, d));
const FORBIDDEN_PACKAGES = /^(@oclif\/|chalk$|ink$|ink-|react$|react\/)/;
/** static imports and exports, side-effect imports and dynamic import() */
const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(?\s*)['"]([^'"]+)['"]/g;

function sources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) sources(p, out);
    else if (/\.tsx?$/.test(name)) out.push(p);
  }
  return out;
}

function imports(file: string): string[] {
  return [...readFileSync(file, 'utf8').matchAll(SPECIFIER)].map((m) => m[1] as string);
}

describe('the core layer', () => {
  it('finds the imports it checks', () => {
    assert.ok(sources(CORE).length > 50);
    assert.deepEqual(imports(join(ROOT, 'src/cli/table.ts')), ['./text.js']);
  });

  it('imports no CLI, command, TUI or terminal library', () => {
    const bad: string[] = [];
    for (const file of sources(CORE)) {
      for (const spec of imports(file)) {
        const target = spec.startsWith('.') ? resolve(dirname(file), spec) : '';
        if (FORBIDDEN_PACKAGES.test(spec) || FORBIDDEN_DIRS.some((d) => target.startsWith(`${d}/`)))
          bad.push(`${relative(ROOT, file)} imports ${spec}`);
      }
    }
    assert.deepEqual(bad, []);
  });
});
