/**
 * The splice with a filter (the POP3 UIDL rewriting of moved accounts): the filter sees
 * every client byte, also those pipelined before the splice, and the client gets what
 * the filter returns for the backend's bytes, on both reading paths; a filter that throws
 * ends only that session, with reason 'error' (the splice's containment).
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { describe, it } from 'node:test';
import { loopbackPairs } from '../support/socket-pair.js';
import { splice, type SpliceResult } from '../../src/core/sessions/splice.js';
import { UidlRewriter } from '../../src/core/transfer/uidl/rewrite.js';

function readUntil(s: Socket, re: RegExp): Promise<string> {
  let text = '';
  return new Promise((resolve) => {
    const on = (d: Buffer): void => {
      text += d.toString('latin1');
      if (re.test(text)) {
        s.off('data', on);
        resolve(text);
      }
    };
    s.on('data', on);
  });
}

describe('splice with a filter', () => {
  const { pair } = loopbackPairs();

  for (const reader of [false, true]) {
    const how = reader ? 'backendReader' : 'data events';
    it(`UIDL replies reach the client rewritten, the rest unchanged (${how})`, async () => {
      const [client, clientPeer] = await pair();
      const [backendPeer, backend] = await pair();
      const closed = new Promise<SpliceResult>((resolve) => {
        splice(client, backend, {
          idleMs: 60_000,
          toBackend: Buffer.from('UIDL 1\r\n'),
          filter: new UidlRewriter(new Map([['d1', 's1']])),
          onClose: resolve,
          backendReader: reader
            ? (sink) => backend.on('data', (chunk: Buffer) => void sink(chunk))
            : undefined,
        });
      });
      const asked = readUntil(backendPeer, /UIDL\r\n$/);
      clientPeer.write('RETR 1\r\nUIDL\r\n');
      assert.equal(await asked, 'UIDL 1\r\nRETR 1\r\nUIDL\r\n');
      const seen = readUntil(clientPeer, /\r\n\.\r\n\+OK\r\n1 s1\r\n2 d2\r\n\.\r\n$/);
      backendPeer.write('+OK 1 d1\r\n+OK\r\n1 d1\r\n.\r\n+OK\r\n1 d1\r\n2 d2\r\n.\r\n');
      assert.equal(await seen, '+OK 1 s1\r\n+OK\r\n1 d1\r\n.\r\n+OK\r\n1 s1\r\n2 d2\r\n.\r\n');
      clientPeer.end();
      assert.equal((await closed).reason, 'client-closed');
      backendPeer.destroy();
    });
  }

  it('a filter that throws ends the session with reason error', async () => {
    const [client, clientPeer] = await pair();
    const [backendPeer, backend] = await pair();
    const faults: unknown[] = [];
    const closed = new Promise<SpliceResult>((resolve) => {
      splice(client, backend, {
        idleMs: 60_000,
        filter: {
          fromClient: () => undefined,
          fromBackend: () => {
            throw new Error('injected: filter threw');
          },
        },
        onClose: resolve,
        onFault: (err) => faults.push(err),
      });
    });
    backendPeer.write('+OK\r\n');
    const r = await closed;
    assert.equal(r.reason, 'error');
    assert.match(r.detail ?? '', /injected: filter threw/);
    assert.equal(faults.length, 1);
    clientPeer.destroy();
    backendPeer.destroy();
  });
});
