/**
 * What /healthz says: ok while the gateway accepts connections and the state can be saved.
 * A gateway that cannot save its state fails closed on logins that need the store, so a
 * load balancer or systemd watchdog should take it out before clients notice.
 */
export type Health =
  | { status: 'ok'; listeners: number; sessions: number; uptimeSeconds: number }
  | { status: 'stopping' | 'degraded'; why: string };

export interface HealthInput {
  /** set once shutdown began: the listeners are closed, sessions have their grace period */
  stopping?: string;
  /** the last background save of the state failed (cleared by the next good one) */
  saveFailure?: { at?: Date; message: string };
  listeners: number;
  sessions: number;
  uptimeSeconds: number;
}

export function healthOf(i: HealthInput): Health {
  if (i.stopping) return { status: 'stopping', why: i.stopping };
  if (i.saveFailure)
    return {
      status: 'degraded',
      why: `saving the state failed${i.saveFailure.at ? ` at ${i.saveFailure.at.toISOString()}` : ''}: ${i.saveFailure.message}`,
    };
  if (i.listeners === 0) return { status: 'degraded', why: 'no listener is open' };
  return {
    status: 'ok',
    listeners: i.listeners,
    sessions: i.sessions,
    uptimeSeconds: Math.floor(i.uptimeSeconds),
  };
}
