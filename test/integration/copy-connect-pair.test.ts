/**
 * The copier opens its source and destination connections together (copy/connect.ts
 * openFlowPair): when the destination refuses the login, the source connection that did
 * open is closed before the error goes on, so a destination refusing every attempt does
 * not leave one source connection per retry. Real Dovecots; the open sockets are read
 * from the kernel's table.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseEndpoint } from '../../src/core/config/endpoint.js';
import { openFlowPair, type SideAccess } from '../../src/core/transfer/copy/connect.js';
import { startLab, type Lab } from '../support/index.js';

const TIMEOUTS = { connectMs: 3000, greetingMs: 3000, commandMs: 10_000 };

/** ESTABLISHED TCP connections to `port` on loopback, from /proc/net/tcp and tcp6. */
function establishedTo(port: number): number {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  let n = 0;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 3 && f[2]!.endsWith(`:${hex}`) && f[3] === '01') n++;
    }
  }
  return n;
}

describe('the copier opens both sides or neither', { timeout: 120_000 }, () => {
  let lab: Lab;
  before(async () => {
    lab = await startLab({ sourceQuirks: { authFailureDelay: '0 secs' } });
  });
  after(() => lab?.stop());

  it('closes the source connection when the destination refuses the login', async () => {
    const user = lab.users[0]!;
    const source: SideAccess = {
      label: 'source',
      endpoint: parseEndpoint(lab.source.urls.imap),
      credentials: user,
    };
    const destination: SideAccess = {
      label: 'destination',
      endpoint: parseEndpoint(lab.destination.urls.imap),
      credentials: { user: user.user, password: 'not-the-password' },
    };
    const port = source.endpoint.port;
    const before = establishedTo(port);
    for (let i = 0; i < 5; i++)
      await assert.rejects(openFlowPair(source, destination, TIMEOUTS), /destination|login|auth/i);
    const start = Date.now();
    while (establishedTo(port) > before && Date.now() - start < 5000) await sleep(50);
    assert.equal(establishedTo(port), before, 'source connections left open');
  });
});
