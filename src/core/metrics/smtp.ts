/** Messages the SMTP front end relayed, from the bus: by route and reply class, bytes, latency. */
import { Counter, Histogram, type Registry } from 'prom-client';
import type { EventBus } from '../bus.js';
import { SMTP_RELAY_BUCKETS } from './buckets.js';

const ROUTES = ['source', 'destination'] as const;

export function smtpMetrics(r: Registry, bus: EventBus): Array<() => void> {
  const messages = new Counter({
    name: 'autoport_smtp_messages_total',
    help: 'Messages relayed over SMTP, by route and the class of the backend reply to DATA.',
    labelNames: ['route', 'class'],
    registers: [r],
  });
  const bytes = new Counter({
    name: 'autoport_smtp_bytes_total',
    help: 'Message bytes streamed to a backend over SMTP, by route (whatever the reply).',
    labelNames: ['route'],
    registers: [r],
  });
  const relay = new Histogram({
    name: 'autoport_smtp_relay_seconds',
    help: "Time from the start of DATA to the backend's reply, by route (the client's upload included).",
    labelNames: ['route'],
    buckets: SMTP_RELAY_BUCKETS,
    registers: [r],
  });
  for (const route of ROUTES) {
    messages.inc({ route, class: '2xx' }, 0);
    bytes.inc({ route }, 0);
    relay.zero({ route });
  }
  return [
    bus.on('smtp.message', (e) => {
      messages.inc({ route: e.route, class: `${Math.trunc(e.code / 100)}xx` });
      bytes.inc({ route: e.route }, Math.max(0, e.bytes));
      relay.observe({ route: e.route }, Math.max(0, e.durationMs) / 1000);
    }),
  ];
}
