/** What the listeners refuse before any session, from the bus. */
import { Counter, type Registry } from 'prom-client';
import type { EventBus } from '../bus.js';

export function listenerMetrics(r: Registry, bus: EventBus): Array<() => void> {
  const proxyRefused = new Counter({
    name: 'autoport_proxy_refused_total',
    help:
      'Connections closed before a greeting on a PROXY protocol listener, by listener and ' +
      'reason: untrusted (not from proxyProtocol.trusted), busy (too many waiting for their ' +
      'header), bad-header (none, malformed or too slow).',
    labelNames: ['listener', 'reason'],
    registers: [r],
  });
  return [
    bus.on('proxy.refused', (e) => proxyRefused.inc({ listener: e.listener, reason: e.reason })),
  ];
}
