/**
 * What the running proxy does for each control request (protocol.ts). Changes run on the
 * proxy's own store, the same functions the accounts commands run when no proxy is up, and
 * are saved before the answer goes out, so a command that returns has its change on disk.
 * Params arrive from the socket unchecked and are checked here.
 */
import { readFileSync } from 'node:fs';
import {
  applyAccountChange,
  assertNoProblems,
  importAddresses,
  parseAccountList,
  requireAccount,
  retryAccount,
  asOperatorError,
  type AccountAction,
  type ChangeResult,
} from '../accounts/index.js';
import { OperatorError } from '../errors.js';
import type { WorkerPool } from '../workers/worker-pool.js';
import type { StateStore } from '../state/types.js';
import { CONTROL_PROTOCOL_VERSION, type Hello, type MonitorSnapshot } from './protocol.js';
import type { ControlHandlers } from './server.js';

/** RFC 5321 4.5.3.1: 64 octets of local part, @, 255 of domain */
const MAX_ADDRESS_BYTES = 320;
const MAX_REASON_CHARS = 500;
const ACTIONS: readonly AccountAction[] = ['exclude', 'include', 'retry', 'forget-credentials'];

export interface ControlHandlerDeps {
  store: StateStore;
  /** undefined when the proxy runs with --no-workers */
  workers: Pick<WorkerPool, 'wake' | 'prioritize'> | undefined;
  live: { snapshot(): Promise<MonitorSnapshot> };
  hello: () => Hello;
}

let version: string | undefined;

/** autoport's version from package.json (src/ and dist/ sit at the same depth). */
export function packageVersion(): string {
  if (version === undefined) {
    try {
      const pkg = JSON.parse(
        readFileSync(new URL('../../../package.json', import.meta.url), 'utf8'),
      ) as { version?: unknown };
      version = typeof pkg.version === 'string' ? pkg.version : 'unknown';
    } catch {
      version = 'unknown';
    }
  }
  return version;
}

export function makeHello(gateway: {
  configFile: string;
  listeners: Hello['listeners'];
  startedAt?: string;
}): Hello {
  return {
    protocol: CONTROL_PROTOCOL_VERSION,
    version: packageVersion(),
    pid: process.pid,
    startedAt: gateway.startedAt ?? new Date().toISOString(),
    configFile: gateway.configFile,
    listeners: gateway.listeners,
  };
}

function badParams(message: string): OperatorError {
  return new OperatorError(message, 'send the params protocol.ts describes', 'EPARAMS');
}

function address(params: Record<string, unknown>): string {
  const a = params.address;
  if (typeof a !== 'string' || a === '' || Buffer.byteLength(a) > MAX_ADDRESS_BYTES)
    throw badParams(`address must be a non-empty string of at most ${MAX_ADDRESS_BYTES} bytes`);
  return a;
}

function noWorkers(addr: string): OperatorError {
  return new OperatorError(
    `the proxy runs without its worker pool (--no-workers), so nothing would move ${addr}`,
    `restart the proxy without --no-workers, or stop it and run: autoport migrate ${addr}`,
    'ENOWORKERS',
  );
}

/** The answer promises the change is on disk; a failing save must say otherwise. */
async function saved(store: Pick<StateStore, 'flush'>): Promise<void> {
  try {
    await store.flush();
  } catch (err) {
    throw new OperatorError(
      `the proxy made the change but could not save the state: ${(err as Error).message}`,
      "free disk space or fix the state folder's permissions; the proxy keeps retrying (see its log)",
      'ESAVE',
      { cause: err },
    );
  }
}

export function makeControlHandlers(deps: ControlHandlerDeps): ControlHandlers {
  const { store } = deps;

  const save = (): Promise<void> => saved(store);

  /** State errors (a bad address, ...) reach the client as the operator errors they are. */
  const operatorErrors = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      throw asOperatorError(err);
    }
  };

  return {
    hello: () => deps.hello(),
    snapshot: () => deps.live.snapshot(),

    'accounts.change': (raw) =>
      operatorErrors(async () => {
        const params = raw as Record<string, unknown>;
        const action = params.action as AccountAction;
        if (!ACTIONS.includes(action))
          throw badParams(`action must be one of ${ACTIONS.join(', ')}`);
        const reason = params.reason;
        if (
          reason !== undefined &&
          (typeof reason !== 'string' || reason.length > MAX_REASON_CHARS)
        )
          throw badParams(`reason must be a string of at most ${MAX_REASON_CHARS} characters`);
        const result = await applyAccountChange(store, {
          action,
          address: address(params),
          reason,
        });
        await save();
        // include/retry: work to take; exclude: a pre-copy running for it stops now
        if (result.changed && action !== 'forget-credentials') deps.workers?.wake();
        return result;
      }),

    'accounts.import': (raw) =>
      operatorErrors(async () => {
        const list = (raw as Record<string, unknown>).addresses;
        if (!Array.isArray(list)) throw badParams('addresses must be an array of strings');
        for (const a of list as unknown[]) {
          // one address per entry: joined into lines below, so no entry may hold a line break
          // or a comment of its own
          if (typeof a !== 'string' || /[\s#]/.test(a) || Buffer.byteLength(a) > MAX_ADDRESS_BYTES)
            throw badParams(
              `every address must be one word without # of at most ${MAX_ADDRESS_BYTES} bytes`,
            );
        }
        const parsed = parseAccountList((list as string[]).join('\n'));
        assertNoProblems(parsed, 'the list');
        const r = await importAddresses(store, parsed.addresses);
        await save();
        return {
          added: r.added,
          alreadyKnown: r.marked + r.unchanged,
          total: r.total,
          marked: r.marked,
          unchanged: r.unchanged,
        };
      }),

    'transfer.start': (raw) =>
      operatorErrors(async (): Promise<ChangeResult> => {
        const addr = address(raw as Record<string, unknown>);
        const rec = await requireAccount(store, addr);
        const refuse = (what: string, hint: string): OperatorError =>
          new OperatorError(`${rec.address} is ${rec.state}: ${what}`, hint, 'EACCOUNTSTATE');
        switch (rec.state) {
          case 'failed': {
            if (!deps.workers) throw noWorkers(rec.address);
            const r = await retryAccount(store, rec.address);
            await save();
            deps.workers.prioritize(rec.address);
            deps.workers.wake();
            return {
              ...r,
              message: `${rec.address} back to captured and first in line: the worker pool starts it when a slot is free`,
            };
          }
          case 'captured':
            if (!deps.workers) throw noWorkers(rec.address);
            deps.workers.prioritize(rec.address);
            deps.workers.wake();
            return {
              address: rec.address,
              before: 'captured',
              after: 'captured',
              changed: true,
              message: `${rec.address} is first in line: the worker pool starts it when a slot is free`,
            };
          case 'transferring':
            throw refuse('it is being moved now', 'autoport monitor shows how far it is');
          case 'migrated':
            throw refuse('it is on the destination already', 'nothing to do');
          case 'excluded':
            throw refuse(
              'it is kept on the source',
              `autoport accounts include ${rec.address} first, if it should move`,
            );
          case 'unknown':
            throw refuse(
              'no password was captured, so the worker pool cannot move it',
              `let the user log in once through the gateway, or stop the proxy and: printf '%s' "$PASSWORD" | autoport migrate ${rec.address} --password-stdin`,
            );
        }
      }),
  };
}
