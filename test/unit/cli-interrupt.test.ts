/** Ctrl-C during `autoport migrate`: the work's signal aborts with what to do next. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { withInterrupt } from '../../src/cli/interrupt.js';
import { OperatorError } from '../../src/core/errors.js';

describe('withInterrupt', () => {
  it('aborts the signal on SIGINT and SIGTERM with EINTERRUPTED, then removes its handlers', async () => {
    const before = [process.listenerCount('SIGINT'), process.listenerCount('SIGTERM')];
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      const reason = await withInterrupt(async (signal) => {
        assert.equal(signal.aborted, false);
        process.emit(sig);
        assert.equal(signal.aborted, true);
        return signal.reason as unknown;
      });
      assert.ok(reason instanceof OperatorError);
      assert.equal(reason.code, 'EINTERRUPTED');
      assert.match(reason.hint, /run the same command again/);
    }
    assert.deepEqual([process.listenerCount('SIGINT'), process.listenerCount('SIGTERM')], before);
  });

  it('removes its handlers when the work throws', async () => {
    const before = process.listenerCount('SIGINT');
    await assert.rejects(
      withInterrupt(async () => {
        throw new Error('boom');
      }),
      /boom/,
    );
    assert.equal(process.listenerCount('SIGINT'), before);
  });
});
