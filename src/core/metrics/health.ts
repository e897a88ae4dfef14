/**
 * What /healthz says: ok while the gateway accepts connections and the state store answers.
 * A gateway that cannot reach or save its state fails closed on logins that need the store,
 * so a load balancer or systemd watchdog should take it out before clients notice.
 */
export type Health =
  | { status: 'ok'; listeners: number; sessions: number; uptimeSeconds: number }
  | { status: 'stopping' | 'degraded'; why: string };

/** A failure with when it began, for the "why" of a degraded answer. */
export interface Failure {
  at?: Date;
  message: string;
}

export interface HealthInput {
  /** set once shutdown began: the listeners are closed, sessions have their grace period */
  stopping?: string;
  /** the last background save of the state failed (cleared by the next good one) */
  saveFailure?: Failure;
  /** the store did not answer its ping (PostgreSQL down, JSON saves failing) */
  storeDown?: Failure;
  listeners: number;
  sessions: number;
  uptimeSeconds: number;
}

const since = (f: Failure): string => (f.at ? ` at ${f.at.toISOString()}` : '');

export function healthOf(i: HealthInput): Health {
  if (i.stopping) return { status: 'stopping', why: i.stopping };
  if (i.saveFailure)
    return {
      status: 'degraded',
      why: `saving the state failed${since(i.saveFailure)}: ${i.saveFailure.message}`,
    };
  if (i.storeDown)
    return {
      status: 'degraded',
      why: `the state store does not answer${i.storeDown.at ? ` since ${i.storeDown.at.toISOString()}` : ''}: ${i.storeDown.message}`,
    };
  if (i.listeners === 0) return { status: 'degraded', why: 'no listener is open' };
  return {
    status: 'ok',
    listeners: i.listeners,
    sessions: i.sessions,
    uptimeSeconds: Math.floor(i.uptimeSeconds),
  };
}

/**
 * The store's ping as /healthz asks it: a scrape storm must not become a query storm on the
 * database, so an answer is reused for `maxAgeMs` and concurrent askers share the one ping
 * in flight. A failure keeps the time the store first stopped answering.
 */
export class StorePing {
  private last: { done: number; down?: Failure } | undefined;
  private inFlight: Promise<Failure | undefined> | undefined;

  constructor(
    private readonly ping: () => Promise<void>,
    private readonly maxAgeMs = 1_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** undefined while the store answers; the failure (since when) otherwise */
  check(): Promise<Failure | undefined> {
    if (this.last && this.now() - this.last.done < this.maxAgeMs)
      return Promise.resolve(this.last.down);
    this.inFlight ??= this.run().finally(() => (this.inFlight = undefined));
    return this.inFlight;
  }

  private async run(): Promise<Failure | undefined> {
    let down: Failure | undefined;
    try {
      await this.ping();
    } catch (err) {
      down = { at: this.last?.down?.at ?? new Date(), message: (err as Error).message };
    }
    this.last = { done: this.now(), ...(down ? { down } : {}) };
    return down;
  }
}
