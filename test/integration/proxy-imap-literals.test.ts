/**
 * Hostile literals before login against the real gateway (issue #10): one write of
 * thousands of {0+} or {0} lines gets a bounded reply and a closed connection, the
 * gateway process lives on and serves the next client, and "+" replies to a client that
 * does not read stop at the socket's write buffer instead of piling up in memory.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { GatewayEvent } from '../../src/core/bus.js';
import {
  FAST_BRAKES,
  gatewayImap,
  RawClient,
  startProxyLab,
  type ProxyLab,
} from './proxy-support.js';

const users = [{ user: 'alice@example.org', password: 'alice-secret' }];

async function stillServes(port: number): Promise<void> {
  const c = gatewayImap(port, 'alice@example.org', 'alice-secret');
  await c.connect();
  const box = await c.mailboxOpen('INBOX');
  assert.equal(typeof box.exists, 'number');
  await c.logout();
}

describe('IMAP gateway: literal floods before login', { timeout: 120_000 }, () => {
  let p: ProxyLab;
  before(async () => {
    p = await startProxyLab({ lab: { users } });
  });
  after(async () => {
    await p?.stop();
  });

  it('12,000 {0+} literals in one write: BAD, BYE, and the gateway lives on', async () => {
    const c = await RawClient.open(p.imapPort);
    await c.waitFor(/^\* OK /m);
    c.send('a LOGIN {0+}\r\n' + '{0+}\r\n'.repeat(12_000));
    await c.waitFor(/^a BAD Too many literals\.\r\n\* BYE /m);
    await c.waitClosed();
    await stillServes(p.imapPort);
  });

  it('12,000 {0} literals in one write: a few "+" replies, not 12,000', async () => {
    const c = await RawClient.open(p.imapPort);
    await c.waitFor(/^\* OK /m);
    c.send('a LOGIN {0}\r\n' + '{0}\r\n'.repeat(12_000));
    await c.waitFor(/^a BAD Too many literals\./m);
    await c.waitClosed();
    const plus = c.text.match(/^\+ /gm)?.length ?? 0;
    assert.equal(plus, 8, c.text);
    assert.match(c.text, /^\* BYE /m);
    await stillServes(p.imapPort);
  });

  it('"+" replies to a client that does not read wait for the socket to drain', async () => {
    // a cap high enough for "+" replies to outgrow the kernel's socket buffers
    const lines = 300_000;
    const g = await p.another({
      limits: { ...FAST_BRAKES, preauth: { maxLiteralsPerCommand: lines * 2 } },
    });
    const closed: Array<Extract<GatewayEvent, { type: 'session.closed' }>> = [];
    // only sessions that never logged in: the one below (an earlier test's logged-in
    // session may still be closing on a busy machine)
    const off = p.bus.on('session.closed', (e) => void (e.user === undefined && closed.push(e)));
    const c = await RawClient.open(g.listeners.imap!.port);
    await c.waitFor(/^\* OK /m);
    c.socket.pause();
    c.send('a LOGIN {0}\r\n' + '{0}\r\n'.repeat(lines) + '\r\nb LOGOUT\r\n');
    // Without back-pressure the gateway reads it all, queues every "+" and logs out.
    await new Promise((r) => setTimeout(r, 6000));
    assert.equal(
      closed.length,
      0,
      `the gateway read on while its replies were not read: ${JSON.stringify(closed)}`,
    );
    c.socket.resume();
    await c.waitClosed(30_000);
    off();
    assert.equal(c.text.match(/^\+ /gm)?.length, lines + 1);
    assert.match(c.text.slice(-200), /^b OK /m);
    assert.equal(closed[0]?.reason, 'client-logout');
  });
});
