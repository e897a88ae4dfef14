/**
 * Account transfers, from the bus, and the accounts in the store.
 *
 * Bytes and messages moved come from transfer.progress, not transfer.finished: progress
 * counts are cumulative per folder within one run (retries of a folder included), so each
 * event adds only what grew since the last event for that account and folder, and a new
 * run (transfer.started) starts from zero again. That counts what a run copied even when
 * it is aborted or fails halfway, which the finished event cannot tell.
 */
import { Counter, Histogram, type Registry } from 'prom-client';
import type { EventBus } from '../bus.js';
import { countAccounts } from '../state/account-counts.js';
import { ACCOUNT_STATES, type StateStore } from '../state/types.js';
import { LOCK_BUCKETS, TRANSFER_BUCKETS } from './buckets.js';
import { gaugeFn } from './registry.js';

const RESULTS = ['ok', 'failed', 'aborted'] as const;

export interface TransferMetricsDeps {
  bus: EventBus;
  store: Pick<StateStore, 'counts'>;
  /** accounts the worker pool is moving now (WorkerPool.active) */
  activeTransfers?: () => number;
  now: () => number;
}

export function transferMetrics(r: Registry, deps: TransferMetricsDeps): Array<() => void> {
  accountGauges(r, deps);
  if (deps.activeTransfers)
    gaugeFn(
      r,
      { name: 'autoport_transfers_running', help: 'Accounts being moved now.' },
      deps.activeTransfers,
    );
  return [...runs(r, deps.bus), ...moved(r, deps.bus), lateMail(r, deps.bus)];
}

/** Both gauges from one cached count of the store (at most one a second, account-counts.ts). */
function accountGauges(r: Registry, deps: TransferMetricsDeps): void {
  const counts = () => countAccounts(deps.store, deps.now());
  gaugeFn(
    r,
    {
      name: 'autoport_accounts',
      help: 'Accounts in the state store, by state.',
      labelNames: ['state'],
    },
    async () => {
      const c = await counts();
      return ACCOUNT_STATES.map((state) => [{ state }, c.byState[state]] as const);
    },
  );
  gaugeFn(
    r,
    { name: 'autoport_transfer_queue', help: 'Captured accounts waiting for the worker pool.' },
    async () => (await counts()).queue,
  );
}

/** Runs started and ended, how long they took and how long each held its account. */
function runs(r: Registry, bus: EventBus): Array<() => void> {
  const captured = new Counter({
    name: 'autoport_accounts_captured_total',
    help: 'Accounts whose credentials were captured at a first login.',
    registers: [r],
  });
  const started = new Counter({
    name: 'autoport_transfers_started_total',
    help: 'Account transfers started (retries included).',
    registers: [r],
  });
  const finished = new Counter({
    name: 'autoport_transfers_finished_total',
    help: 'Account transfers ended, by result: ok, failed, or aborted by the gateway (shutdown, immediate timeout; resumed later).',
    labelNames: ['result'],
    registers: [r],
  });
  const duration = new Histogram({
    name: 'autoport_transfer_duration_seconds',
    help: 'Time an account transfer took, by result.',
    labelNames: ['result'],
    buckets: TRANSFER_BUCKETS,
    registers: [r],
  });
  const lock = new Histogram({
    name: 'autoport_account_lock_seconds',
    help: 'Time an account was locked (transferring: logins refused, mail deferred) for the switch of a move, whatever the result; moves that never switched are not counted.',
    buckets: LOCK_BUCKETS,
    registers: [r],
  });
  for (const result of RESULTS) {
    finished.inc({ result }, 0);
    duration.zero({ result });
  }
  return [
    bus.on('account.captured', () => captured.inc()),
    bus.on('transfer.started', () => started.inc()),
    bus.on('transfer.finished', (e) => {
      const result = e.ok ? 'ok' : e.aborted ? 'aborted' : 'failed';
      finished.inc({ result });
      duration.observe({ result }, Math.max(0, e.durationMs) / 1000);
      // the switch only: the pre-copy before it locked nothing
      if (e.lock) lock.observe(Math.max(0, e.lock.ms) / 1000);
    }),
  ];
}

/** Messages and bytes copied, counted once from cumulative progress events. */
function moved(r: Registry, bus: EventBus): Array<() => void> {
  const bytes = new Counter({
    name: 'autoport_transfer_bytes_total',
    help: 'Message bytes copied to the destination by transfers.',
    registers: [r],
  });
  const messages = new Counter({
    name: 'autoport_transfer_messages_total',
    help: 'Messages copied to the destination by transfers.',
    registers: [r],
  });
  /** per running account: per folder, the counts of the last progress event */
  const progress = new Map<string, Map<string, { copied: number; bytes: number }>>();
  return [
    bus.on('transfer.started', (e) => void progress.set(e.address, new Map())),
    bus.on('transfer.progress', (e) => {
      let folders = progress.get(e.address);
      if (!folders) progress.set(e.address, (folders = new Map()));
      const last = folders.get(e.folder) ?? { copied: 0, bytes: 0 };
      if (e.copied > last.copied) messages.inc(e.copied - last.copied);
      if (e.copiedBytes > last.bytes) bytes.inc(e.copiedBytes - last.bytes);
      folders.set(e.folder, {
        copied: Math.max(last.copied, e.copied),
        bytes: Math.max(last.bytes, e.copiedBytes),
      });
    }),
    bus.on('transfer.finished', (e) => void progress.delete(e.address)),
  ];
}

/** Late mail the sweeps after the switch found on the source and copied (workers/late-mail.ts). */
function lateMail(r: Registry, bus: EventBus): () => void {
  const swept = new Counter({
    name: 'autoport_late_mail_swept_total',
    help: 'Messages that reached the source after the switch of their account, copied to the destination by a late-mail sweep.',
    registers: [r],
  });
  return bus.on('transfer.swept', (e) => swept.inc(e.messages));
}
