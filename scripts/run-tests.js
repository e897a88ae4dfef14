#!/usr/bin/env node
// Runs the whole suite with Node's own test runner (TypeScript through tsx).
// Usage: npm test [-- <file or folder> ...]
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

function collect(p, out) {
  if (statSync(p).isDirectory()) {
    for (const name of readdirSync(p).sort()) collect(join(p, name), out);
  } else if (/\.test\.tsx?$/.test(p)) {
    out.push(p);
  }
  return out;
}

const args = process.argv.slice(2);
const roots = args.length ? args : ['test/unit', 'test/integration', 'test/e2e'];
// The default folders may not all exist yet (git keeps no empty folder); named ones must.
const files = roots.filter((r) => args.length || existsSync(r)).flatMap((r) => collect(r, []));
if (files.length === 0) {
  console.error('no test files found under', roots.join(', '));
  process.exit(1);
}
const concurrency = process.env.TEST_CONCURRENCY ?? '1';
const r = spawnSync(
  process.execPath,
  [
    '--import',
    'tsx',
    '--test',
    `--test-concurrency=${concurrency}`,
    ...files.map((f) => relative('.', f)),
  ],
  { stdio: 'inherit' },
);
process.exit(r.status ?? 1);
