/**
 * The splice's socket callbacks run outside any caller's try: a bug there (here a client
 * socket whose write throws) ends that session with reason 'error' and reports the fault;
 * it never reaches the process as an uncaught exception.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loopbackPairs } from '../support/socket-pair.js';
import { splice, type SpliceResult } from '../../src/core/sessions/splice.js';

describe('splice containment', () => {
  const { pair } = loopbackPairs();

  for (const reader of [false, true]) {
    it(`a throw while copying ends the session with reason error (${reader ? 'backendReader' : 'data events'})`, async () => {
      const [client, clientPeer] = await pair();
      const [backendPeer, backend] = await pair();
      client.write = () => {
        throw new Error('injected: write threw');
      };
      const faults: unknown[] = [];
      const closed = new Promise<SpliceResult>((resolve) => {
        splice(client, backend, {
          idleMs: 60_000,
          onClose: resolve,
          onFault: (err) => faults.push(err),
          backendReader: reader
            ? (sink) => backend.on('data', (chunk: Buffer) => void sink(chunk))
            : undefined,
        });
      });
      backendPeer.write('* OK from the backend\r\n');
      const r = await closed;
      assert.equal(r.reason, 'error');
      assert.match(r.detail ?? '', /injected: write threw/);
      assert.equal(faults.length, 1);
      await new Promise((res) => setImmediate(res));
      assert.ok(client.destroyed && backend.destroyed, 'both sides closed');
      clientPeer.destroy();
      backendPeer.destroy();
    });
  }
});
