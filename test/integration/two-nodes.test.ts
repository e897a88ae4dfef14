/**
 * Two gateway nodes on one PostgreSQL, as an ISP runs them behind a load balancer: the
 * built `autoport proxy` twice, the same configuration but for each node's listeners,
 * name and state folder, against the lab's real Dovecots and the harness's PostgreSQL.
 *
 * - A login storm split across both nodes: every account is captured, moved exactly once
 *   (one switch and one successful finish over both nodes' logs), and its destination
 *   holds the source's mail, nothing lost or doubled.
 * - While one node switches an account, logins on the other node are refused, its open
 *   source session there is closed, and after the move it routes to the destination.
 * - A node killed (SIGKILL) in the middle of a move: the other node takes the account over
 *   once the dead node's lease has run out, and finishes the move.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { generateKeyFile } from '../../src/core/state/crypto.js';
import { openPgStore, type PgStore } from '../../src/core/state/pg-store.js';
import {
  bulkCorpus,
  freePorts,
  loadBulk,
  startLab,
  writeLabConfig,
  type Corpus,
  type Credentials,
  type Lab,
} from '../support/index.js';
import { ensureBuilt, ROOT } from '../support/cli.js';
import { startPostgres, type PostgresInstance } from '../support/postgres.js';
import { assertSameMail } from './migrate-support.js';
import { gatewayImap, readIfExists } from './proxy-support.js';

const SMALL = Array.from({ length: 16 }, (_, i) => ({
  user: `u${String(i).padStart(2, '0')}@example.org`,
  password: `pw-${i}-secret`,
}));
const BIG: Credentials = { user: 'big@example.org', password: 'big-secret' };
const HUGE: Credentials = { user: 'huge@example.org', password: 'huge-secret' };
const LEASE_SECONDS = 3;

interface Node {
  name: string;
  dir: string;
  imapPort: number;
  proc: ChildProcess;
  out: string;
}

interface LogEvent {
  type: string;
  at?: string;
  address?: string;
  user?: string;
  ok?: boolean;
  target?: string;
  reason?: string;
  result?: string;
}

/** The node's session log (sessions.jsonl in its state folder), parsed. */
function events(node: Node): LogEvent[] {
  return readIfExists(join(node.dir, 'sessions.jsonl'))
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as LogEvent);
}

function startNode(lab: Lab, name: string, state: string, key: string, port: number): Node {
  const dir = join(lab.dir, name);
  mkdirSync(dir, { recursive: true });
  const config = writeLabConfig(lab, dir, {
    listen: { imap: `127.0.0.1:${port}` },
    state,
    stateDir: dir,
    logDir: dir,
    keyFile: key,
    node: { name, heartbeatSeconds: 1, leaseSeconds: LEASE_SECONDS },
    transfer: { concurrency: 3, connections: 2 },
    timeouts: { connectMs: 3000, greetingMs: 3000, commandMs: 20_000, idleMs: 120_000 },
  });
  const proc = spawn(
    process.execPath,
    [join(ROOT, 'bin/run.js'), 'proxy', '-c', config, '--log-format', 'json', '--grace', '1'],
    { cwd: ROOT, env: { ...process.env, AUTOPORT_CONFIG: '' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const node: Node = { name, dir, imapPort: port, proc, out: '' };
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => (node.out += d));
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (node.out += d));
  return node;
}

async function ready(node: Node): Promise<void> {
  const start = Date.now();
  while (!node.out.includes('autoport proxy listening')) {
    if (node.proc.exitCode !== null) throw new Error(`${node.name} exited: ${node.out}`);
    if (Date.now() - start > 60_000) throw new Error(`${node.name} not ready: ${node.out}`);
    await sleep(50);
  }
}

async function stopNode(node: Node, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (node.proc.exitCode !== null || node.proc.signalCode !== null) return;
  const exited = new Promise((r) => node.proc.once('exit', r));
  node.proc.kill(signal);
  await exited;
}

/** One IMAP login through a node; the reply's text when refused. */
async function login(node: Node, who: Credentials): Promise<'ok' | string> {
  const c = gatewayImap(node.imapPort, who.user, who.password);
  try {
    await c.connect();
    await c.mailboxOpen('INBOX');
    await c.logout();
    return 'ok';
  } catch (err) {
    c.close();
    const e = err as { responseText?: string; message: string };
    return e.responseText ?? e.message;
  }
}

async function until<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const start = Date.now();
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() - start > ms) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(100);
  }
}

const stateOf = async (store: PgStore, who: Credentials) => (await store.get(who.user))?.state;

describe('two gateway nodes on one PostgreSQL', { timeout: 420_000 }, () => {
  let db: PostgresInstance;
  let lab: Lab;
  let store: PgStore;
  let nodes: Node[] = [];
  const corpora = new Map<string, Corpus>();
  let key: string;
  let state: string;

  before(async () => {
    ensureBuilt();
    db = await startPostgres();
    // the config refuses a password in the URL; the harness's server trusts loopback
    assert.equal(new URL(db.url).password, '', 'a password-less URL');
    state = db.url;
    lab = await startLab({
      users: [...SMALL, BIG, HUGE],
      sourceQuirks: { authFailureDelay: '0 secs' },
    });
    for (const [i, u] of SMALL.entries()) {
      const c = bulkCorpus({
        count: 20,
        avgSize: 3000,
        seed: i + 1,
        folders: ['INBOX', 'Archive'],
      });
      await loadBulk(lab.source, u.user, c);
      corpora.set(u.user, c);
    }
    for (const [u, count] of [
      [BIG, 1500],
      [HUGE, 3000],
    ] as const) {
      const c = bulkCorpus({ count, avgSize: 6000, seed: count, folders: ['INBOX', 'Old'] });
      await loadBulk(lab.source, u.user, c);
      corpora.set(u.user, c);
    }
    key = join(lab.dir, 'autoport.key');
    await generateKeyFile(key);
    const ports = await freePorts(2);
    nodes = ['alpha', 'beta'].map((n, i) => startNode(lab, n, state, key, ports[i]!));
    await Promise.all(nodes.map(ready));
    store = await openPgStore(db.url);
  });

  after(async () => {
    await Promise.all(nodes.map((n) => stopNode(n, 'SIGKILL')));
    await store?.close();
    await lab?.stop();
    await db?.stop();
  });

  it('a login storm split across both nodes: every account moved exactly once, nothing lost', async () => {
    // each account logs in on both nodes at once, twice: captures race across nodes
    const logins = SMALL.flatMap((u) => [0, 1, 0, 1].map((n) => () => login(nodes[n]!, u)));
    const results: string[] = [];
    const queue = [...logins];
    await Promise.all(
      Array.from({ length: 12 }, async () => {
        for (let job = queue.shift(); job; job = queue.shift()) results.push(await job());
      }),
    );
    const refused = results.filter((r) => r !== 'ok');
    // a login during its account's switch is refused try-later; nothing else may fail
    for (const r of refused) assert.match(r, /UNAVAILABLE|try again|later/i, r);
    assert.ok(
      refused.length < results.length / 4,
      `${refused.length} of ${results.length} refused`,
    );

    await until('all small accounts migrated', 180_000, async () => {
      const states = await Promise.all(SMALL.map((u) => stateOf(store, u)));
      return states.every((s) => s === 'migrated') ? true : undefined;
    });
    // the record says migrated a moment before the node logs the move's end
    const finished = (u: Credentials) => (e: LogEvent) =>
      e.type === 'transfer.finished' && e.address === u.user && e.ok === true;
    await until('every move logged', 15_000, async () =>
      SMALL.every((u) => nodes.some((n) => events(n).some(finished(u)))) ? true : undefined,
    );
    const all = nodes.flatMap((n) => events(n).map((e) => ({ ...e, node: n.name })));
    const movers = new Set<string>();
    for (const u of SMALL) {
      const switches = all.filter((e) => e.type === 'transfer.switching' && e.address === u.user);
      const done = all.filter(
        (e) => e.type === 'transfer.finished' && e.address === u.user && e.ok === true,
      );
      assert.equal(switches.length, 1, `${u.user} switched ${switches.length} times`);
      assert.equal(done.length, 1, `${u.user} finished ${done.length} times`);
      movers.add(done[0]!.node);
      await assertSameMail(corpora.get(u.user)!, lab.source, lab.destination, u);
    }
    assert.equal(movers.size, 2, 'both nodes took part in the moves');
  });

  it("a switch on one node: the other refuses logins, closes the account's source session, then routes to the destination", async () => {
    // an open session to the source on each node before the move starts
    const held = nodes.map((n) => {
      const c = gatewayImap(n.imapPort, BIG.user, BIG.password);
      return { node: n, client: c, closed: new Promise((r) => c.once('close', r)) };
    });
    for (const h of held) {
      await h.client.connect();
      await h.client.mailboxOpen('INBOX');
    }
    await until('big captured', 10_000, async () =>
      (await stateOf(store, BIG)) === 'migrated' || (await stateOf(store, BIG)) === 'captured'
        ? true
        : undefined,
    );
    // the held sessions keep the pool waiting for a quiet user: ask for the move now on
    // whichever node; both poll logins on both nodes every 100 ms meanwhile
    const polls: Array<{ node: string; at: number; result: string }> = [];
    let polling = true;
    const pollers = nodes.map(async (n) => {
      while (polling) {
        const result = await login(n, BIG);
        polls.push({ node: n.name, at: Date.now(), result });
        await sleep(100);
      }
    });
    const kick = await import('../../src/core/control/client.js');
    const c = await kick.connectControl(join(nodes[0]!.dir, 'autoport.sock'));
    try {
      // refused only when the pool already started it (it may not wait for a quiet user)
      await c.call('transfer.start', { address: BIG.user }).catch((err: Error) => {
        if (
          !/EACCOUNTSTATE|transferring|migrated/.test(
            `${(err as { code?: string }).code} ${err.message}`,
          )
        )
          throw err;
      });
    } finally {
      c.close();
    }
    await until('big migrated and logged', 120_000, async () =>
      (await stateOf(store, BIG)) === 'migrated' &&
      nodes.some((n) =>
        events(n).some((e) => e.type === 'transfer.finished' && e.address === BIG.user),
      )
        ? true
        : undefined,
    );
    await sleep(500);
    polling = false;
    await Promise.all(pollers);
    await Promise.all(held.map((h) => Promise.race([h.closed, sleep(5000)])));

    const all = nodes.flatMap((n) => events(n).map((e) => ({ ...e, node: n.name })));
    const sw = all.find((e) => e.type === 'transfer.switching' && e.address === BIG.user)!;
    const fin = all.find((e) => e.type === 'transfer.finished' && e.address === BIG.user)!;
    assert.ok(sw && fin?.ok, 'one switch, finished');
    const mover = sw.node;
    const other = nodes.find((n) => n.name !== mover)!;
    assert.equal(
      all.filter((e) => e.type === 'transfer.switching' && e.address === BIG.user).length,
      1,
      'switched once, by one node',
    );
    // both held sessions were closed for the switch, the other node's by the change it heard
    for (const h of held)
      assert.ok(
        all.some(
          (e) =>
            e.node === h.node.name &&
            e.type === 'session.closed' &&
            e.user === BIG.user &&
            e.reason === 'account-locked',
        ),
        `${h.node.name}: the source session stayed open through the switch`,
      );
    // on the other node: source before the lock, refused during it, destination after
    const routes = events(other).filter((e) => e.type === 'session.route' && e.user === BIG.user);
    const lockFrom = Date.parse(sw.at!);
    const lockTo = Date.parse(fin.at!);
    for (const r of routes) {
      const t = Date.parse(r.at!);
      if (t > lockFrom + 1000 && t < lockTo)
        assert.notEqual(
          r.target,
          'source',
          `a login on ${other.name} reached the source during the lock`,
        );
      if (t > lockTo) assert.equal(r.target, 'destination', `after the move: ${r.target}`);
    }
    assert.ok(
      routes.some((r) => r.target === 'destination'),
      `${other.name} routed to the destination after the move`,
    );
    await assertSameMail(corpora.get(BIG.user)!, lab.source, lab.destination, BIG);
    assert.ok(polls.length > 10, `${polls.length} polls`);
  });

  it('a node killed in the middle of a move: the other takes the account over and finishes it', async () => {
    assert.equal(await login(nodes[0]!, HUGE), 'ok');
    const started = await until('huge started', 60_000, async () => {
      for (const n of nodes)
        if (events(n).some((e) => e.type === 'transfer.started' && e.address === HUGE.user))
          return n;
      return undefined;
    });
    await sleep(300); // well into the pre-copy
    assert.notEqual(await stateOf(store, HUGE), 'migrated', 'the move outran the kill');
    await stopNode(started, 'SIGKILL');
    const killedAt = Date.now();
    const survivor = nodes.find((n) => n !== started)!;
    await until('huge migrated by the survivor', 180_000, async () =>
      (await stateOf(store, HUGE)) === 'migrated' ? true : undefined,
    );
    const fin = await until('the move logged', 15_000, async () =>
      events(survivor).find(
        (e) => e.type === 'transfer.finished' && e.address === HUGE.user && e.ok,
      ),
    );
    assert.ok(fin, `${survivor.name} finished the move`);
    const took = Date.parse(
      events(survivor).find((e) => e.type === 'transfer.started' && e.address === HUGE.user)!.at!,
    );
    assert.ok(took - killedAt > 1000, 'taken over only after the lease');
    await assertSameMail(corpora.get(HUGE.user)!, lab.source, lab.destination, HUGE);
    // the survivor serves it from the destination
    assert.equal(await login(survivor, HUGE), 'ok');
  });

  it('the logs and the database hold no password', async () => {
    const rows = JSON.stringify(await store.list());
    for (const n of nodes) {
      const text = readIfExists(join(n.dir, 'sessions.jsonl')) + n.out;
      for (const u of [...SMALL, BIG, HUGE]) {
        assert.ok(!text.includes(u.password), `${n.name} logged ${u.user}'s password`);
        assert.ok(!rows.includes(u.password), `${u.user}'s password in the database`);
      }
    }
  });
});
