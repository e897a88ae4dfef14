/**
 * The login-check time the metrics read (autoport_login_check_seconds): runLogin puts the
 * first backend login of an attempt on its session.login event, on success and on
 * refusal, and nothing when no backend was asked.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EventBus, type BackendCheck, type GatewayEvent } from '../../src/core/bus.js';
import { Brakes } from '../../src/core/login/brakes.js';
import { runLogin, type FlowRequest } from '../../src/core/login/login-flow.js';
import { DEFAULT_LIMITS } from '../../src/core/limits.js';
import { silentLogger } from '../../src/core/log/logger.js';
import { ReplyError } from '../../src/core/replies.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function rig() {
  const bus = new EventBus();
  const checks: Array<BackendCheck | undefined> = [];
  bus.on('session.login', (e: Extract<GatewayEvent, { type: 'session.login' }>) =>
    checks.push(e.check),
  );
  const brakes = new Brakes(DEFAULT_LIMITS.brakes, { sleep: async () => undefined });
  const req = (user: string): FlowRequest => ({
    protocol: 'smtp',
    user,
    mechanism: 'PLAIN',
    session: 's1',
    client: '192.0.2.1',
  });
  return { deps: { brakes, bus, logger: silentLogger }, req, checks };
}

describe('login check time on session.login', () => {
  it('is the first backend login of the attempt, whether it answered yes or no', async () => {
    const { deps, req, checks } = rig();
    await runLogin(req('a@example.org'), deps, async (_a, check) => {
      await check.time('source', () => sleep(30));
      // a second login in the same attempt (strategy immediate) is not the check
      await check.time('destination', () => sleep(1));
      return 'ok';
    });
    await runLogin(req('b@example.org'), deps, (_a, check) =>
      check.time('destination', async () => {
        await sleep(20);
        throw new ReplyError('auth-failed', 'wrong password');
      }),
    );
    assert.equal(checks[0]?.side, 'source');
    assert.ok(checks[0]!.ms >= 25 && checks[0]!.ms < 1000, String(checks[0]?.ms));
    assert.equal(checks[1]?.side, 'destination');
    assert.ok(checks[1]!.ms >= 15, String(checks[1]?.ms));
  });

  it('is absent when no backend was asked', async () => {
    const { deps, req, checks } = rig();
    await runLogin(req('not an address'), deps, () => Promise.resolve('never'));
    assert.deepEqual(checks, [undefined]);
  });
});
