/**
 * One store in a fresh process, so its memory is its own: open it (timed), then a capture
 * storm on it, and the process's RSS after the open and at its peak. bench/state.ts runs
 * it as a child: `node --import tsx bench/state-probe.ts <json|pg> <file|url> <key file>
 * <accounts> <captures>`; it prints one JSON line. A store that refuses to open (the JSON
 * store past MAX_JSON_ACCOUNTS) is a figure too: how long it took and what it said.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { loadKeyring } from '../src/core/state/crypto.js';
import { OperatorError } from '../src/core/errors.js';
import type { StateStore } from '../src/core/state/types.js';
import {
  captureStorm,
  mb,
  percentile,
  r1,
  SOLO_CAPTURES,
  WARM_CAPTURES,
  spreadAddresses,
  timed,
} from './state-records.js';

export interface ProbeResult {
  openMs: number;
  /** the store's refusal, when it would not open */
  refused?: string;
  count?: number;
  rssAfterOpenMB?: number;
  heapAfterOpenMB?: number;
  /** SOLO_CAPTURES one at a time */
  soloP50Ms?: number;
  soloP99Ms?: number;
  captures?: number;
  captureP50Ms?: number;
  captureP99Ms?: number;
  captureMaxMs?: number;
  /** captures made durable per second, CONCURRENCY at a time */
  capturesPerSec?: number;
  peakRssMB?: number;
}

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

async function open(kind: string, location: string): Promise<StateStore> {
  if (kind === 'pg') return (await import('../src/core/state/pg-store.js')).openPgStore(location);
  const { openJsonStore } = await import('../src/core/state/json-store.js');
  return openJsonStore(location, { saveDelayMs: 100, compactMinBytes: Infinity });
}

async function probe(argv: string[]): Promise<ProbeResult> {
  const [kind = 'json', location = '', keyFile = '', accounts = '0', captures = '2000'] = argv;
  const keyring = loadKeyring(keyFile);
  let store: StateStore;
  let openMs: number;
  try {
    [openMs, store] = await timed(() => open(kind, location));
  } catch (err) {
    if (!(err instanceof OperatorError)) throw err;
    return { openMs: NaN, refused: `${err.message} (${err.hint})` };
  }
  try {
    const count = await store.count();
    gc();
    const mem = process.memoryUsage();
    const addresses = spreadAddresses(Number(accounts));
    await captureStorm(store, addresses, keyring, WARM_CAPTURES); // warm-up, not counted
    const solo = await captureStorm(store, addresses, keyring, SOLO_CAPTURES, undefined, 1);
    const [ms, lat] = await timed(() => captureStorm(store, addresses, keyring, Number(captures)));
    return {
      openMs: r1(openMs),
      count,
      rssAfterOpenMB: mb(mem.rss),
      heapAfterOpenMB: mb(mem.heapUsed),
      soloP50Ms: r1(percentile(solo, 50)),
      soloP99Ms: r1(percentile(solo, 99)),
      captures: lat.length,
      captureP50Ms: r1(percentile(lat, 50)),
      captureP99Ms: r1(percentile(lat, 99)),
      captureMaxMs: r1(Math.max(...lat)),
      capturesPerSec: Math.round((lat.length * 1000) / ms),
      peakRssMB: mb(process.resourceUsage().maxRSS * 1024),
    };
  } finally {
    await store.close();
  }
}

console.log(JSON.stringify(await probe(process.argv.slice(2))));
