/**
 * The monitor's link to the gateway: the real control client against the real control
 * server on a Unix socket in a temp dir (handlers scripted by the test), through a gateway
 * that is not there yet, comes up, answers, goes away and comes back. A stand-in `connect`
 * checks the back-off steps.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { ChangeResult } from '../../src/core/accounts/change.js';
import { connectControl } from '../../src/core/control/client.js';
import { startControlServer, type ControlServer } from '../../src/core/control/server.js';
import { OperatorError } from '../../src/core/errors.js';
import {
  createControlLink,
  describeLinkError,
  type ControlConnection,
} from '../../src/tui/control-link.js';
import type { LinkStatus, MonitorLink } from '../../src/tui/link.js';
import { makeTempDir, removeDir } from '../support/tmp.js';
import { hello, snapshot } from './monitor-fixtures.js';

const dir = makeTempDir('monitor-link');
after(() => removeDir(dir));

/** what a link reported, and a way to wait for a status or snapshot */
function record(link: MonitorLink) {
  const statuses: LinkStatus[] = [];
  const queues: number[] = [];
  link.subscribe({ status: (s) => statuses.push(s), snapshot: (s) => queues.push(s.queue) });
  const until = async (check: () => boolean, what: string) => {
    const deadline = Date.now() + 5000;
    while (!check()) {
      if (Date.now() > deadline)
        throw new Error(`${what} did not happen: ${JSON.stringify(statuses)}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  return { statuses, queues, until, last: () => statuses[statuses.length - 1] };
}

function startGateway(
  socketPath: string,
  state: { queue: number; transfer: (a: string) => ChangeResult },
) {
  return startControlServer({
    socketPath,
    limits: { watchMinMs: 20 },
    handlers: {
      hello: () => hello,
      snapshot: () => snapshot({ queue: state.queue++ }),
      'accounts.change': () => {
        throw new Error('not used');
      },
      'accounts.import': () => {
        throw new Error('not used');
      },
      'transfer.start': (params) => state.transfer((params as { address: string }).address),
    },
  });
}

test('the link waits for a gateway that is not running, follows it, and reconnects after it went away', async () => {
  const socketPath = join(dir, 'a.sock');
  const link = createControlLink({
    socketPath,
    connect: connectControl,
    intervalMs: 20,
    retryMs: 20,
    maxRetryMs: 40,
  });
  let server: ControlServer | undefined;
  try {
    const seen = record(link);
    await seen.until(() => seen.last()?.state === 'lost', 'lost');
    assert.deepEqual(seen.statuses[0], { state: 'connecting' });
    const lost = seen.last() as Extract<LinkStatus, { state: 'lost' }>;
    assert.equal(lost.reason, 'autoport proxy is not running');
    assert.equal(link.target, socketPath);
    const offline = await link.startTransfer('alice@example.org');
    assert.equal(offline.ok, false);
    assert.equal(offline.message, 'not connected to the gateway');

    const state = {
      queue: 100,
      transfer: (address: string): ChangeResult => {
        if (address === 'bob@example.org')
          throw new OperatorError(
            'bob@example.org is excluded',
            'include it first: autoport accounts include bob@example.org',
            'EEXCLUDED',
          );
        return {
          address,
          before: 'failed',
          after: 'captured',
          changed: true,
          message: 'queued again',
        };
      },
    };
    server = await startGateway(socketPath, state);
    await seen.until(() => seen.last()?.state === 'connected', 'connected');
    const connected = seen.last() as Extract<LinkStatus, { state: 'connected' }>;
    assert.equal(connected.hello.pid, hello.pid);
    // after `watch`: the first snapshot, then pushes
    await seen.until(() => seen.queues.length >= 3, 'pushed snapshots');
    assert.deepEqual(seen.queues.slice(0, 3), [100, 101, 102]);

    assert.deepEqual(await link.startTransfer('alice@example.org'), {
      ok: true,
      address: 'alice@example.org',
      message: 'queued again',
    });
    assert.deepEqual(await link.startTransfer('bob@example.org'), {
      ok: false,
      address: 'bob@example.org',
      message: 'bob@example.org is excluded',
      hint: 'include it first: autoport accounts include bob@example.org',
    });

    // a late subscriber gets the status and the last snapshot at once
    const late = record(link);
    assert.equal(late.statuses[0]?.state, 'connected');
    assert.equal(late.queues.length, 1);

    await server.close();
    server = undefined;
    await seen.until(() => seen.last()?.state === 'lost', 'lost after the gateway stopped');
    const gone = seen.last() as Extract<LinkStatus, { state: 'lost' }>;
    assert.match(gone.reason, /closed|not running/);

    state.queue = 500;
    server = await startGateway(socketPath, state);
    await seen.until(() => seen.queues.includes(500), 'snapshots from the new gateway');
    assert.equal(seen.last()?.state, 'connected');
  } finally {
    link.close();
    await server?.close();
  }
});

/** a connection the test closes by hand */
class StandIn extends EventEmitter implements ControlConnection {
  readonly hello = hello;
  async call(): Promise<ChangeResult> {
    throw new Error('not used');
  }
  async watch() {
    return snapshot();
  }
  close(): void {}
  drop(): void {
    this.emit('close', new Error('read ECONNRESET'));
  }
}

test('the wait between attempts doubles up to its ceiling and starts over after a connection', async () => {
  const results: (Error | StandIn)[] = [
    Object.assign(new Error('x'), { code: 'ENOPROXY' }),
    new Error('the control socket /x did not accept within 5 s'),
    new Error('still not'),
    new Error('and not'),
    new StandIn(),
  ];
  let attempts = 0;
  const link = createControlLink({
    socketPath: '/x',
    intervalMs: 1000,
    retryMs: 5,
    maxRetryMs: 15,
    now: () => 0,
    connect: async () => {
      const r = results[attempts++];
      if (!r) throw new Error('no more');
      if (r instanceof Error) throw r;
      return r;
    },
  });
  try {
    const seen = record(link);
    await seen.until(() => seen.last()?.state === 'connected', 'connected');
    const waits = seen.statuses.flatMap((s) => (s.state === 'lost' ? [s.retryAt] : []));
    assert.deepEqual(waits, [5, 10, 15, 15]);
    const reasons = seen.statuses.flatMap((s) => (s.state === 'lost' ? [s.reason] : []));
    assert.deepEqual(reasons.slice(0, 2), [
      'autoport proxy is not running',
      'the control socket /x did not accept within 5 s',
    ]);
    // the next attempt says why the last one ended
    assert.deepEqual(seen.statuses[2], {
      state: 'connecting',
      lastError: 'autoport proxy is not running',
    });
    (results[4] as StandIn).drop();
    await seen.until(() => seen.statuses.filter((s) => s.state === 'lost').length === 5, 'lost');
    assert.deepEqual(seen.last(), { state: 'lost', reason: 'read ECONNRESET', retryAt: 5 });
  } finally {
    link.close();
  }
  const closedAt = attempts;
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(attempts, closedAt, 'no attempt after close()');
});

test('describeLinkError keeps the client error message', () => {
  assert.equal(
    describeLinkError(new OperatorError('boom', 'try x', 'ENOPROXY')),
    'autoport proxy is not running',
  );
  assert.equal(
    describeLinkError(new Error('EACCES: the socket belongs to another user')),
    'EACCES: the socket belongs to another user',
  );
  assert.equal(describeLinkError('plain'), 'plain');
});
