/**
 * `autoport proxy` with its state in PostgreSQL (the harness's own server, or
 * AUTOPORT_TEST_PG_URL): a first login captures the account (credentials sealed in its
 * row), the worker pool moves it, the next login goes to the destination; and
 * `accounts list` and `report progress` read the same database.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { loadCorpus, standardCorpus } from '../support/index.js';
import { ensureBuilt, runCli } from '../support/cli.js';
import { startPostgres, type PostgresInstance } from '../support/postgres.js';
import { assertSameMail } from './migrate-support.js';
import {
  FAST_BRAKES,
  gatewayImap,
  nextEvent,
  type ProxyLab,
  startProxyLab,
} from './proxy-support.js';

const users = [{ user: 'alice@example.org', password: 'alice-secret' }];
const PASSWORD_ENV = 'AUTOPORT_TEST_STATE_PASSWORD';

/** The URL for `state:` (no password: the config refuses one) and the password apart. */
function stateSetting(url: string): { state: string; password?: string } {
  const u = new URL(url);
  if (u.password === '') return { state: url };
  const password = decodeURIComponent(u.password);
  u.password = '';
  return { state: u.toString(), password };
}

describe('autoport proxy with a PostgreSQL state', { timeout: 240_000 }, () => {
  let db: PostgresInstance;
  let p: ProxyLab;
  let rawUrl: string;
  const env: NodeJS.ProcessEnv = {};
  const corpus = standardCorpus();
  before(async () => {
    ensureBuilt();
    db = await startPostgres();
    rawUrl = db.url;
    const { state, password } = stateSetting(db.url);
    if (password !== undefined) env[PASSWORD_ENV] = process.env[PASSWORD_ENV] = password;
    p = await startProxyLab({
      lab: { users },
      workers: true,
      config: { state, ...(password !== undefined ? { statePasswordEnv: PASSWORD_ENV } : {}) },
      deps: { limits: { ...FAST_BRAKES, workerPollMs: 100 } },
    });
    await loadCorpus(p.lab.source, 'alice@example.org', 'alice-secret', corpus);
  });
  after(async () => {
    await p?.stop();
    await db?.stop();
  });

  it('the config names the database; the first login captures, sealed in the row', async () => {
    assert.match(p.config.state, /^postgres(ql)?:\/\//);
    assert.equal(p.store.location.startsWith('postgres'), true, p.store.location);
    const done = nextEvent(p, 'transfer.finished', (e) => e.address === 'alice@example.org');
    const c = gatewayImap(p.imapPort, 'alice@example.org', 'alice-secret');
    await c.connect();
    await c.mailboxOpen('INBOX');
    const client = new pg.Client({ connectionString: rawUrl });
    await client.connect();
    try {
      const { rows } = await client.query<{ record: string }>(
        'SELECT record::text AS record FROM autoport_accounts WHERE address = $1',
        ['alice@example.org'],
      );
      assert.equal(rows.length, 1);
      const record = JSON.parse(rows[0]!.record) as { credentials?: unknown };
      assert.ok(record.credentials, 'credentials stored');
      assert.ok(!rows[0]!.record.includes('alice-secret'), 'the password is sealed');
    } finally {
      await client.end();
    }
    await c.logout();
    const fin = await done;
    assert.equal(fin.ok, true, fin.detail);
    assert.equal((await p.store.get('alice@example.org'))?.state, 'migrated');
  });

  it('after the move the same login goes to the destination, with the same mail', async () => {
    await assertSameMail(corpus, p.lab.source, p.lab.destination, users[0]!);
    const route = nextEvent(p, 'session.route', (e) => e.user === 'alice@example.org');
    const c = gatewayImap(p.imapPort, 'alice@example.org', 'alice-secret');
    await c.connect();
    await c.mailboxOpen('INBOX');
    await c.logout();
    assert.equal((await route).target, 'destination');
  });

  it('accounts list and report progress read the same database', async () => {
    const cliEnv = { ...env, AUTOPORT_CONFIG: p.config.file };
    const list = await runCli(['accounts', 'list', '--json'], { env: cliEnv });
    assert.equal(list.code, 0, list.stderr);
    const accounts = JSON.parse(list.stdout) as Array<{ address: string; state: string }>;
    assert.deepEqual(
      accounts.map((a) => [a.address, a.state]),
      [['alice@example.org', 'migrated']],
    );
    const progress = await runCli(['report', 'progress', '--json'], { env: cliEnv });
    assert.equal(progress.code, 0, progress.stderr);
    assert.match(progress.stdout, /"migrated":\s*1/);
  });
});
