/** Runs state-probe.ts in a fresh process (its memory is the store's own) and reads its line. */
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ProbeResult } from './state-probe.js';

export type { ProbeResult };

const PROBE = join(dirname(fileURLToPath(import.meta.url)), 'state-probe.ts');

/** args: json|pg, the file or URL, the key file, the account count, the captures. */
export function runProbe(args: string[]): Promise<ProbeResult> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [...process.execArgv, PROBE, ...args],
      { encoding: 'utf8', maxBuffer: 1 << 24, timeout: 600_000 },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`probe ${args[0]} failed: ${err.message}\n${stderr}`));
        resolve(JSON.parse(stdout.trim().split('\n').pop() as string) as ProbeResult);
      },
    );
  });
}
