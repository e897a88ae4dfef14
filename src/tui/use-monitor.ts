/**
 * The monitor's data hook: follows a MonitorLink and hands the screen the connection
 * status, the latest snapshot and the closed sessions still to print. Snapshots may arrive
 * every few hundred milliseconds; the screen takes at most one per `minIntervalMs` (the
 * newest), so a busy gateway does not make the terminal flicker.
 */
import { useEffect, useState } from 'react';
import type { ClosedSession, MonitorSnapshot } from '../core/control/protocol.js';
import { ClosedSessionLog } from './closed-sessions.js';
import type { LinkStatus, MonitorLink } from './link.js';

/** redraws per second from data, at most about 4 */
export const MIN_REDRAW_MS = 250;

/**
 * Closed sessions for <Static>. Static prints only items appended since its last render, so
 * the list only grows; past BATCH_ITEMS a new batch (a new Static) starts, which keeps a
 * monitor that runs for weeks from holding every session it ever printed.
 */
export interface ClosedBatch {
  batch: number;
  items: ClosedSession[];
}

const BATCH_ITEMS = 500;

export interface MonitorData {
  status: LinkStatus;
  snapshot: MonitorSnapshot | undefined;
  closed: ClosedBatch;
}

export function appendClosed(prev: ClosedBatch, fresh: readonly ClosedSession[]): ClosedBatch {
  if (fresh.length === 0) return prev;
  if (prev.items.length + fresh.length > BATCH_ITEMS)
    return { batch: prev.batch + 1, items: [...fresh] };
  return { batch: prev.batch, items: [...prev.items, ...fresh] };
}

export function useMonitor(link: MonitorLink, minIntervalMs = MIN_REDRAW_MS): MonitorData {
  const [status, setStatus] = useState<LinkStatus>({ state: 'connecting' });
  const [snapshot, setSnapshot] = useState<MonitorSnapshot>();
  const [closed, setClosed] = useState<ClosedBatch>({ batch: 0, items: [] });

  useEffect(() => {
    const log = new ClosedSessionLog();
    let pending: MonitorSnapshot | undefined;
    let timer: NodeJS.Timeout | undefined;
    let last = 0;
    const flush = () => {
      timer = undefined;
      if (!pending) return;
      const s = pending;
      pending = undefined;
      last = Date.now();
      setSnapshot(s);
      const fresh = log.take(s.closed);
      if (fresh.length > 0) setClosed((prev) => appendClosed(prev, fresh));
    };
    const unsubscribe = link.subscribe({
      status: (s) => setStatus(s),
      snapshot: (s) => {
        pending = s;
        if (timer) return;
        const wait = last + minIntervalMs - Date.now();
        if (wait <= 0) flush();
        else timer = setTimeout(flush, wait);
      },
    });
    return () => {
      unsubscribe();
      if (timer) clearTimeout(timer);
    };
  }, [link, minIntervalMs]);

  return { status, snapshot, closed };
}
