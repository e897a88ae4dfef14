/**
 * The IMAP and POP3 fault matrix (issue #10, item 6): a fault proxy in front of the real
 * source Dovecot closes or stalls the gateway's first backend connection at one step
 * (before the greeting, during the login, inside a FETCH literal or a RETR, mid-APPEND),
 * and a source that refuses connections. The client gets a try-later (`NO [UNAVAILABLE]`,
 * `-ERR [SYS/TEMP]`) or, once spliced, a closed connection, never an OK for something
 * not done; the mailbox keeps what it had; a second session through the same gateway,
 * started while a stalled one still waits, works. Stalls end by the gateway's own
 * timeouts (greeting, command, splice idle), set short here.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseEndpoint } from '../../src/core/config/endpoint.js';
import type { Config } from '../../src/core/config/types.js';
import { freePort, makeMessage, openImap } from '../support/index.js';
import { startFaultProxy, type FaultProxy, type FaultScript } from './cut-proxy.js';
import { gatewayImap, RawClient, startProxyLab, type ProxyLab } from './proxy-support.js';

const alice = { user: 'alice@example.org', password: 'alice-secret' };
const BODY_MARK = 'BODY-MARK-5d1c';
const MESSAGE = makeMessage({ subject: 'kept', body: `${BODY_MARK}\r\n`, size: 20_000 });
/** the splice's idle timeout: how long a stalled spliced session may last */
const IDLE_MS = 2000;

type Protocol = 'imap' | 'pop3';
type Step = 'refused' | 'greeting' | 'login' | 'mid-literal' | 'mid-APPEND';

interface Row {
  protocol: Protocol;
  step: Step;
  /** undefined: the source's port is closed */
  trigger?: FaultScript['trigger'];
}

const ROWS: Row[] = [
  { protocol: 'imap', step: 'refused' },
  { protocol: 'imap', step: 'greeting', trigger: { dir: 'accept' } },
  { protocol: 'imap', step: 'login', trigger: { dir: 'up', match: /^ap\d+ LOGIN /m } },
  {
    protocol: 'imap',
    step: 'mid-literal',
    trigger: { dir: 'down', match: /^\* 1 FETCH [^\r\n]*\{\d+\}\r\n/m, pass: 100 },
  },
  {
    protocol: 'imap',
    step: 'mid-APPEND',
    trigger: { dir: 'up', match: /^A2 APPEND INBOX \{\d+\}\r\n/m, pass: 100 },
  },
  { protocol: 'pop3', step: 'refused' },
  { protocol: 'pop3', step: 'greeting', trigger: { dir: 'accept' } },
  { protocol: 'pop3', step: 'login', trigger: { dir: 'up', match: /^PASS /m } },
  // inside the message RETR sends
  { protocol: 'pop3', step: 'mid-literal', trigger: { dir: 'down', match: new RegExp(BODY_MARK) } },
];

describe(
  'IMAP and POP3 gateway, fault matrix in front of a real Dovecot',
  { timeout: 240_000 },
  () => {
    let p: ProxyLab;
    before(async () => {
      p = await startProxyLab({
        lab: { users: [alice] },
        config: {
          timeouts: { connectMs: 1000, greetingMs: 1000, commandMs: 1500, idleMs: IDLE_MS },
        },
      });
      const c = await openImap(p.lab.source, alice);
      try {
        await c.append('INBOX', MESSAGE);
      } finally {
        await c.logout();
      }
    });
    after(async () => {
      await p?.stop();
    });

    for (const row of ROWS) {
      for (const action of row.trigger ? (['close', 'stall'] as const) : (['refuse'] as const)) {
        it(`${row.protocol}: the source ${action === 'refuse' ? 'refuses connections' : `${action}s at ${row.step}`}`, async () => {
          const real = p.lab.source.ports[row.protocol];
          const proxy = row.trigger
            ? await startFaultProxy(
                { host: '127.0.0.1', port: real },
                { trigger: row.trigger, action: action as FaultScript['action'] },
              )
            : undefined;
          const port = proxy?.port ?? (await freePort());
          const cfg: Config = {
            ...p.config,
            listen: { [row.protocol]: { host: '127.0.0.1', port: 0 } },
            source: {
              ...p.config.source,
              [row.protocol]: parseEndpoint(`${row.protocol}://127.0.0.1:${port}?tls=none`),
            },
          };
          const g = await p.another({}, cfg);
          try {
            const listen = g.listeners[row.protocol]!.port;
            const faulted =
              row.protocol === 'imap'
                ? imapFaulted(listen, row.step)
                : pop3Faulted(listen, row.step);
            if (proxy) await struck(proxy);
            // A second session, while a stalled one still waits: it gets through.
            if (action !== 'refuse') await healthy(row.protocol, listen);
            await faulted;
            if (proxy) await released(proxy);
            assert.equal(await sourceCount(), 1, 'the mailbox holds what it held, no more');
          } finally {
            await g.stop(0);
            await proxy?.close();
          }
        });
      }
    }

    for (const protocol of ['imap', 'pop3'] as const) {
      it(`${protocol}: the client leaves while the source stalls at login: the backend connection is closed`, async () => {
        const proxy = await startFaultProxy(
          { host: '127.0.0.1', port: p.lab.source.ports[protocol] },
          { trigger: { dir: 'up', match: /^(ap\d+ LOGIN|PASS) /m }, action: 'stall' },
        );
        const cfg: Config = {
          ...p.config,
          listen: { [protocol]: { host: '127.0.0.1', port: 0 } },
          source: {
            ...p.config.source,
            [protocol]: parseEndpoint(`${protocol}://127.0.0.1:${proxy.port}?tls=none`),
          },
        };
        const g = await p.another({}, cfg);
        try {
          const raw = await RawClient.open(g.listeners[protocol]!.port);
          await raw.waitFor(/^(\* OK|\+OK) /);
          raw.send(
            protocol === 'imap'
              ? `A1 LOGIN ${alice.user} ${alice.password}\r\n`
              : `USER ${alice.user}\r\nPASS ${alice.password}\r\n`,
          );
          await struck(proxy);
          raw.close();
          await released(proxy);
          await healthy(protocol, g.listeners[protocol]!.port);
        } finally {
          await g.stop(0);
          await proxy.close();
        }
      });
    }

    it('imap: the source stops reading in the middle of a big APPEND: the splice ends by its idle timeout', async () => {
      // 16 MB is more than the loopback TCP buffers hold: the splice's backpressure holds
      // the client, and nothing moves until the idle timeout closes the session.
      const proxy = await startFaultProxy(
        { host: '127.0.0.1', port: p.lab.source.ports.imap },
        {
          trigger: { dir: 'up', match: /^A2 APPEND INBOX \{\d+\}\r\n/m, pass: 100 },
          action: 'jam',
        },
      );
      const cfg: Config = {
        ...p.config,
        listen: { imap: { host: '127.0.0.1', port: 0 } },
        source: {
          ...p.config.source,
          imap: parseEndpoint(`imap://127.0.0.1:${proxy.port}?tls=none`),
        },
      };
      const g = await p.another({}, cfg);
      const raw = await RawClient.open(g.listeners.imap!.port);
      try {
        await raw.waitFor(/^\* OK /);
        raw.send(`A1 LOGIN ${alice.user} ${alice.password}\r\n`);
        await raw.waitFor(/^A1 OK /m);
        const size = 16 * 1024 * 1024;
        raw.send(`A2 APPEND INBOX {${size}}\r\n`);
        await raw.waitFor(/^\+ /m);
        const chunk = Buffer.alloc(1024 * 1024, 'x');
        for (let i = 0; i < 16; i++) raw.send(chunk);
        raw.send('\r\n');
        await struck(proxy);
        await healthy('imap', g.listeners.imap!.port);
        await raw.waitClosed(IDLE_MS + 8000);
        assert.doesNotMatch(raw.text, /^A2 /m, 'no reply to the APPEND cut short');
        assert.equal(await sourceCount(), 1);
      } finally {
        raw.close();
        await g.stop(0);
        await proxy.close();
      }
    });

    /** Wait (bounded) until the fault struck. */
    async function struck(proxy: FaultProxy): Promise<void> {
      const deadline = Date.now() + 10_000;
      while (proxy.struck === 0 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      assert.equal(proxy.struck, 1, 'the fault struck');
    }

    /** The gateway let go of the faulted backend connection (bounded wait). */
    async function released(proxy: FaultProxy): Promise<void> {
      const deadline = Date.now() + 5000;
      while (proxy.faultedOpen > 0 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      assert.equal(proxy.faultedOpen, 0, 'the faulted backend connection was closed');
    }

    async function sourceCount(): Promise<number> {
      const c = await openImap(p.lab.source, alice);
      try {
        const box = await c.mailboxOpen('INBOX');
        return box.exists;
      } finally {
        await c.logout();
      }
    }

    async function healthy(protocol: Protocol, port: number): Promise<void> {
      if (protocol === 'imap') {
        const c = gatewayImap(port, alice.user, alice.password);
        await c.connect();
        try {
          await c.mailboxOpen('INBOX');
          const m = await c.fetchOne('1', { source: true });
          assert.ok(m && m.source?.toString('latin1').includes(BODY_MARK));
        } finally {
          await c.logout();
        }
        return;
      }
      const raw = await RawClient.open(port);
      try {
        await raw.waitFor(/^\+OK /);
        raw.send(`USER ${alice.user}\r\nPASS ${alice.password}\r\n`);
        await raw.waitFor(/^\+OK[^\r\n]*\r\n\+OK[^\r\n]*\r\n/m);
        const at = raw.text.length;
        raw.send('RETR 1\r\n');
        await raw.waitFor(new RegExp(`${BODY_MARK}[\\s\\S]*\\r\\n\\.\\r\\n`), 5000, at);
        raw.send('QUIT\r\n');
        await raw.waitClosed();
      } finally {
        raw.close();
      }
    }

    /**
     * The faulted IMAP session. Before the splice: a tagged NO [UNAVAILABLE], and the
     * gateway's session stays usable. Spliced: the connection closes without a tagged OK.
     */
    async function imapFaulted(port: number, step: Step): Promise<void> {
      const raw = await RawClient.open(port);
      try {
        await raw.waitFor(/^\* OK /);
        raw.send(`A1 LOGIN ${alice.user} ${alice.password}\r\n`);
        if (step === 'refused' || step === 'greeting' || step === 'login') {
          await raw.waitFor(/^A1 NO \[UNAVAILABLE\] /m, 10_000);
          raw.send('A2 NOOP\r\n');
          await raw.waitFor(/^A2 OK/m);
          return;
        }
        await raw.waitFor(/^A1 OK /m);
        if (step === 'mid-literal') {
          raw.send('A2 SELECT INBOX\r\n');
          await raw.waitFor(/^A2 OK /m);
          raw.send('A3 FETCH 1 BODY.PEEK[]\r\n');
        } else {
          const text = `Subject: appended\r\n\r\n${'lost line\r\n'.repeat(200)}`;
          raw.send(`A2 APPEND INBOX {${text.length}}\r\n`);
          await raw.waitFor(/^\+ /m);
          raw.send(text);
          raw.send('\r\n');
        }
        // bounded by the splice's idle timeout when the source stalls
        await raw.waitClosed(IDLE_MS + 8000);
        const tag = step === 'mid-literal' ? 'A3' : 'A2';
        assert.doesNotMatch(
          raw.text,
          new RegExp(`^${tag} `, 'm'),
          'no reply to a command cut short',
        );
      } finally {
        raw.close();
      }
    }

    /** The faulted POP3 session: -ERR [SYS/TEMP] before the splice, a closed connection after. */
    async function pop3Faulted(port: number, step: Step): Promise<void> {
      const raw = await RawClient.open(port);
      try {
        await raw.waitFor(/^\+OK /);
        raw.send(`USER ${alice.user}\r\nPASS ${alice.password}\r\n`);
        if (step !== 'mid-literal') {
          await raw.waitFor(/^-ERR \[SYS\/TEMP\] /m, 10_000);
          assert.doesNotMatch(raw.text, /^\+OK Logged in/m);
          // the session goes on: the next try gets a connection without the fault
          const at = raw.text.length;
          raw.send(`USER ${alice.user}\r\nPASS ${alice.password}\r\n`);
          await raw.waitFor(
            step === 'refused' ? /^-ERR \[SYS\/TEMP\] /m : /^\+OK Logged in/m,
            10_000,
            at,
          );
          return;
        }
        await raw.waitFor(/^\+OK[^\r\n]*\r\n\+OK[^\r\n]*\r\n/m);
        const at = raw.text.length;
        raw.send('RETR 1\r\n');
        await raw.waitClosed(IDLE_MS + 8000);
        assert.doesNotMatch(raw.text.slice(at), /\r\n\.\r\n/, 'no end of the message');
      } finally {
        raw.close();
      }
    }
  },
);
