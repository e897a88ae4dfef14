/**
 * Throttling and back-off. Servers that protect themselves say so in different words:
 * Exchange Online answers `NO ... Request is throttled. Suggested Backoff Time: 5000
 * milliseconds`, Gmail uses the `[THROTTLED]` response code, others just drop the
 * connection. The copy engine reacts the same way to all of them: wait (as told, when told),
 * use fewer connections, reconnect, and resume from the checkpoint.
 */

/** Default wait when a server throttles without saying how long. */
export const DEFAULT_THROTTLE_DELAY_MS = 10_000;

/** Read a throttling hint from a server's text; null when the text is not about throttling. */
export function parseThrottle(text: string): { delayMs: number } | null {
  const suggested = /Suggested\s+Backoff\s+Time:\s*(\d+)\s*milliseconds/i.exec(text);
  if (suggested) return { delayMs: Math.min(Number(suggested[1]), 10 * 60_000) };
  if (/\[THROTTLED\]/i.test(text) || /request is throttled/i.test(text)) {
    return { delayMs: DEFAULT_THROTTLE_DELAY_MS };
  }
  return null;
}

export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
  /** attempts after which the caller should give up */
  maxAttempts: number;
  random?: () => number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 500, maxMs: 60_000, maxAttempts: 8 };

/** Exponential back-off with full jitter; a server's own suggestion wins when larger. */
export class Backoff {
  attempts = 0;
  constructor(private readonly opts: BackoffOptions = DEFAULT_BACKOFF) {}

  get exhausted(): boolean {
    return this.attempts >= this.opts.maxAttempts;
  }

  next(suggestedMs?: number): number {
    const cap = Math.min(this.opts.maxMs, this.opts.baseMs * 2 ** this.attempts);
    this.attempts++;
    const jittered = Math.round(cap / 2 + ((this.opts.random ?? Math.random)() * cap) / 2);
    return Math.max(jittered, suggestedMs ?? 0);
  }

  reset(): void {
    this.attempts = 0;
  }
}

/**
 * How many connections may run at once. Throttling halves it (never below 1); a run of
 * successes lets it grow back by one up to the configured maximum.
 */
export class AdaptiveLimit {
  private current: number;
  private streak = 0;

  constructor(
    readonly max: number,
    private readonly growAfter = 20,
  ) {
    this.current = Math.max(1, max);
  }

  get value(): number {
    return this.current;
  }

  throttled(): void {
    this.current = Math.max(1, Math.floor(this.current / 2));
    this.streak = 0;
  }

  succeeded(): void {
    if (this.current >= this.max) return;
    this.streak++;
    if (this.streak >= this.growAfter) {
      this.current++;
      this.streak = 0;
    }
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal?.reason as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
