/**
 * Two `autoport proxy` nodes (runProxyService, each with its own config folder, control
 * socket and listeners) on one PostgreSQL, and a third host with the same config but no
 * proxy. `monitor --once` on either node shows the sessions of both, each with its node;
 * `accounts list` and `report progress` work on all three; a change on the host without a
 * proxy goes straight to the database (no lock: there is no single owner) and is seen by
 * the nodes.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { ImapFlow } from 'imapflow';
import type { MonitorSnapshot } from '../../src/core/control/protocol.js';
import type { Gateway } from '../../src/core/gateway/gateway.js';
import { runProxyService, type ProxyServiceResult } from '../../src/core/gateway/service.js';
import { memorySink } from '../../src/core/log/index.js';
import { generateKeyFile } from '../../src/core/state/crypto.js';
import { ensureBuilt, runCli } from '../support/cli.js';
import { startLab, writeLabConfig, type Lab } from '../support/index.js';
import { startPostgres, type PostgresInstance } from '../support/postgres.js';
import { FAST_BRAKES, gatewayImap } from './proxy-support.js';

const PASSWORD_ENV = 'AUTOPORT_TEST_STATE_PASSWORD';
const alice = { user: 'alice@example.org', password: 'alice-secret' };
const bob = { user: 'bob@example.org', password: 'bob-secret' };
const carol = { user: 'carol@example.org', password: 'carol-secret' };

interface Node {
  name: string;
  config: string;
  gateway: Gateway;
  signals: EventEmitter;
  service: Promise<ProxyServiceResult>;
}

describe(
  'monitor, accounts and report on several nodes over PostgreSQL',
  { timeout: 240_000 },
  () => {
    let db: PostgresInstance;
    let lab: Lab;
    const nodes: Node[] = [];
    const clients: ImapFlow[] = [];
    let lonely: string;
    const env: NodeJS.ProcessEnv = {};

    /** a config folder of its own (stateDir: its control socket), the shared state and key */
    function writeConfig(name: string, state: string, password: boolean): string {
      const dir = join(lab.dir, name);
      mkdirSync(dir, { recursive: true });
      return writeLabConfig(lab, dir, {
        state,
        ...(password ? { statePasswordEnv: PASSWORD_ENV } : {}),
        keyFile: join(lab.dir, 'autoport.key'),
        logDir: join(dir, 'log'),
        listen: { imap: '127.0.0.1:0', pop3: '127.0.0.1:0', smtp: '127.0.0.1:0' },
        node: { name, heartbeatSeconds: 1, leaseSeconds: 3 },
        timeouts: { connectMs: 3000, greetingMs: 3000, commandMs: 10_000, idleMs: 60_000 },
      });
    }

    async function startNode(name: string, config: string): Promise<Node> {
      const signals = new EventEmitter();
      let service!: Promise<ProxyServiceResult>;
      const gateway = await new Promise<Gateway>((resolve, reject) => {
        service = runProxyService({
          configPath: config,
          workers: false,
          signals: signals as unknown as Pick<NodeJS.Process, 'on' | 'off'>,
          graceMs: 1000,
          limits: FAST_BRAKES,
          log: { sink: memorySink(), format: 'json', level: 'info' },
          onReady: (g) => resolve(g),
        });
        service.catch(reject);
      });
      return { name, config, gateway, signals, service };
    }

    const cli = (args: string[], config: string) =>
      runCli(args, { env: { ...env, AUTOPORT_CONFIG: config } });

    async function login(node: Node, who: { user: string; password: string }): Promise<void> {
      const c = gatewayImap(node.gateway.listeners.imap!.port, who.user, who.password);
      await c.connect();
      await c.mailboxOpen('INBOX');
      clients.push(c);
    }

    /** `monitor --once --json` on a node until `check` holds (the other node's view lags its heartbeat) */
    async function snapshotUntil(
      config: string,
      check: (s: MonitorSnapshot) => boolean,
    ): Promise<MonitorSnapshot> {
      const deadline = Date.now() + 20_000;
      for (;;) {
        const r = await cli(['monitor', '--once', '--json'], config);
        assert.equal(r.code, 0, r.stderr);
        const s = JSON.parse(r.stdout) as MonitorSnapshot;
        if (check(s)) return s;
        if (Date.now() > deadline) {
          const { sessions, transfers, nodes, nodesError } = s;
          assert.fail(
            `no such snapshot; last: ${JSON.stringify({ sessions, transfers, nodes, nodesError })}`,
          );
        }
        await sleep(300);
      }
    }

    before(async () => {
      ensureBuilt();
      db = await startPostgres();
      lab = await startLab({ users: [alice, bob, carol] });
      await generateKeyFile(join(lab.dir, 'autoport.key'));
      const u = new URL(db.url);
      const password = u.password === '' ? undefined : decodeURIComponent(u.password);
      u.password = '';
      if (password !== undefined) env[PASSWORD_ENV] = process.env[PASSWORD_ENV] = password;
      const state = u.toString();
      for (const name of ['gw-a', 'gw-b']) {
        nodes.push(await startNode(name, writeConfig(name, state, password !== undefined)));
      }
      lonely = writeConfig('gw-c', state, password !== undefined);
    });

    after(async () => {
      await Promise.all(clients.map((c) => c.logout().catch(() => c.close())));
      for (const n of nodes) {
        n.signals.emit('SIGTERM');
        n.signals.emit('SIGTERM');
        await n.service.catch(() => undefined);
      }
      await lab?.stop();
      await db?.stop();
    });

    it('monitor --once on either node shows the sessions of both, each with its node', async () => {
      const [a, b] = nodes as [Node, Node];
      await login(a, alice);
      await login(b, bob);
      const both = (s: MonitorSnapshot) =>
        s.sessions.list.some((x) => x.user === alice.user) &&
        s.sessions.list.some((x) => x.user === bob.user);
      for (const [here, there] of [
        [a, b],
        [b, a],
      ] as const) {
        const s = await snapshotUntil(here.config, both);
        const who = (user: string) => s.sessions.list.find((x) => x.user === user)?.node;
        assert.equal(who(alice.user), 'gw-a');
        assert.equal(who(bob.user), 'gw-b');
        assert.equal(s.sessions.total, 2);
        assert.deepEqual(
          s.nodes.map((n) => [n.name, n.self, n.alive, n.sessions]),
          [
            [here.name, true, true, 1],
            [there.name, false, true, 1],
          ],
        );
        assert.equal(s.nodesError, undefined);
      }
      const text = await cli(['monitor', '--once'], a.config);
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /^nodes 2\/2 alive {2}gw-a \(here\) 1 session {2}gw-b 1 session$/m);
      assert.match(text.stdout, /^ {2}NODE +PROTO +ACCOUNT/m);
      assert.match(text.stdout, /^ {2}gw-b +imap +bob@example\.org /m);
      assert.match(text.stdout, /^ {2}gw-a +imap +alice@example\.org /m);
    });

    it('accounts list and report progress work on every node, with or without a proxy', async () => {
      for (const config of [nodes[0]!.config, nodes[1]!.config, lonely]) {
        const list = await cli(['accounts', 'list', '--json'], config);
        assert.equal(list.code, 0, list.stderr);
        const accounts = JSON.parse(list.stdout) as Array<{ address: string; state: string }>;
        assert.deepEqual(accounts.map((x) => [x.address, x.state]).sort(), [
          [alice.user, 'captured'],
          [bob.user, 'captured'],
        ]);
        const progress = await cli(['report', 'progress', '--json'], config);
        assert.equal(progress.code, 0, progress.stderr);
        assert.match(progress.stdout, /"captured":\s*2/);
      }
    });

    it('a change where no proxy runs goes to the database; a node sees it and routes by it', async () => {
      const excluded = await cli(['accounts', 'exclude', carol.user, '--json'], lonely);
      assert.equal(excluded.code, 0, excluded.stderr);
      assert.equal((JSON.parse(excluded.stdout) as { after: string }).after, 'excluded');
      const shown = await cli(['accounts', 'show', carol.user, '--json'], nodes[1]!.config);
      assert.equal(shown.code, 0, shown.stderr);
      assert.match(shown.stdout, /"state":\s*"excluded"/);
      // carol logs in on a node: excluded, she stays on the source and her password is not kept
      await login(nodes[1]!, carol);
      const s = await snapshotUntil(nodes[0]!.config, (x) =>
        x.sessions.list.some((v) => v.user === carol.user && v.route === 'source'),
      );
      assert.equal(s.sessions.list.find((v) => v.user === carol.user)?.node, 'gw-b');
      const after = await cli(['accounts', 'show', carol.user, '--json'], lonely);
      assert.match(after.stdout, /"state":\s*"excluded"/);
      // and back, this time through the local node's control socket
      const included = await cli(['accounts', 'include', carol.user, '--json'], nodes[0]!.config);
      assert.equal(included.code, 0, included.stderr);
      assert.equal((JSON.parse(included.stdout) as { after: string }).after, 'unknown');
    });
  },
);
