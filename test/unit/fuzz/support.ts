/**
 * Shared settings and generators for the property-based tests of the gateway's readers of
 * untrusted bytes. A fixed seed by default, so `npm test` is repeatable; `npm run fuzz`
 * raises the runs (AUTOPORT_FUZZ_RUNS) and a time cap per property keeps it to minutes.
 *
 *   AUTOPORT_FUZZ_RUNS     runs per property (default 300)
 *   AUTOPORT_FUZZ_SEED     seed (default fixed); a failure prints the seed and path to replay
 *   AUTOPORT_FUZZ_TIME_MS  time cap per property (default 10 s, 20 s when runs are raised)
 */
import fc from 'fast-check';

const DEFAULT_RUNS = 300;
const DEFAULT_SEED = 20_261_203;

function envInt(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new Error(`${name} must be an integer, got ${v}`);
  return n;
}

export const FUZZ_RUNS = envInt('AUTOPORT_FUZZ_RUNS') ?? DEFAULT_RUNS;
export const FUZZ_SEED = envInt('AUTOPORT_FUZZ_SEED') ?? DEFAULT_SEED;
const TIME_MS = envInt('AUTOPORT_FUZZ_TIME_MS') ?? (FUZZ_RUNS > DEFAULT_RUNS ? 20_000 : 10_000);

function params<T>(): fc.Parameters<T> {
  return {
    numRuns: FUZZ_RUNS,
    seed: FUZZ_SEED,
    interruptAfterTimeLimit: TIME_MS,
    markInterruptAsFailure: false,
  };
}

function replayHint(err: unknown): Error {
  const msg = err instanceof Error ? err.message : String(err);
  return new Error(
    `fuzz failure with AUTOPORT_FUZZ_SEED=${FUZZ_SEED} AUTOPORT_FUZZ_RUNS=${FUZZ_RUNS}\n${msg}`,
    { cause: err },
  );
}

/** fc.assert with the suite's runs, seed and time cap; the seed is in the failure message. */
export function check<Ts extends [unknown, ...unknown[]]>(
  prop: fc.IPropertyWithHooks<Ts> | fc.IProperty<Ts>,
): void {
  try {
    fc.assert(prop, params<Ts>());
  } catch (err) {
    throw replayHint(err);
  }
}

export async function checkAsync<Ts extends [unknown, ...unknown[]]>(
  prop: fc.IAsyncPropertyWithHooks<Ts> | fc.IAsyncProperty<Ts>,
): Promise<void> {
  try {
    await fc.assert(prop, params<Ts>());
  } catch (err) {
    throw replayHint(err);
  }
}

/** Random cut points for a byte stream of any length (applied with `cut`). */
export const cutsArb: fc.Arbitrary<number[]> = fc.oneof(
  { weight: 4, arbitrary: fc.array(fc.nat(), { maxLength: 12 }) },
  // byte by byte, now and then
  { weight: 1, arbitrary: fc.constant<number[]>([-1]) },
);

/** The stream cut into chunks at the given points (taken modulo its length). */
export function cut(bytes: Buffer, cuts: number[]): Buffer[] {
  if (bytes.length === 0) return [];
  if (cuts.length === 1 && cuts[0] === -1) {
    return Array.from({ length: bytes.length }, (_, i) => bytes.subarray(i, i + 1));
  }
  const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const c of [...at, bytes.length]) {
    if (c > from) out.push(bytes.subarray(from, c));
    from = Math.max(from, c);
  }
  return out;
}

/**
 * A byte stream made of protocol-ish tokens and noise: hostile input is mostly almost
 * valid input, which pure random bytes rarely are.
 */
export function tokenStream(tokens: readonly string[], maxTokens = 40): fc.Arbitrary<Buffer> {
  const piece = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...tokens).map((t) => Buffer.from(t, 'latin1')) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 6 }).map((a) => Buffer.from(a)) },
    { weight: 1, arbitrary: fc.string({ maxLength: 12 }).map((s) => Buffer.from(s, 'latin1')) },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.constantFrom('x', ' ', '\r\n', '{0}', '{1+}'), fc.integer({ min: 1, max: 80 }))
        .map(([t, n]) => Buffer.from(t.repeat(n), 'latin1')),
    },
  );
  return fc.array(piece, { maxLength: maxTokens }).map((ps) => Buffer.concat(ps));
}
