/**
 * `autoport check --user <address> --password-stdin` as the operator runs it (bin/run.js on
 * the built dist/) against the real lab: the capability table shows the source's
 * post-login capabilities for that user, and the account plan is the one
 * `autoport migrate <address> --dry-run` shows (human and --json), over IMAP and over POP3.
 * Nothing is written; a wrong password gives exit 1 and a hint.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AccountCheckResult } from '../../src/core/check/check-account.js';
import type { EndpointReport } from '../../src/core/check/types.js';
import type { DryRunResult } from '../../src/core/transfer/dry-run.js';
import { ensureBuilt, runCli } from '../support/cli.js';
import {
  makeTempDir,
  openImap,
  removeDir,
  startLab,
  writeLabConfig,
  type Lab,
} from '../support/index.js';

/** `npm test` builds first; a single-file run builds here when dist/ is older than src/. */

function endpoint(result: { endpoints: EndpointReport[] }, role: string): EndpointReport {
  const e = result.endpoints.find((x) => x.role === role);
  assert.ok(e, `no ${role}`);
  return e;
}

const autoport = (args: string[], input = '') => runCli(args, { input });

const present = (e: EndpointReport, name: string): boolean | null | undefined =>
  e.capabilities.find((c) => c.name === name)?.present;

const msg = (subject: string, body = 'hello'): Buffer =>
  Buffer.from(`Subject: ${subject}\r\nDate: Tue, 02 Jan 2024 10:00:00 +0000\r\n\r\n${body}\r\n`);

describe('autoport check --user', () => {
  let lab: Lab;
  let dir: string;
  let imapConfig: string;
  let pop3Config: string;
  let alice: { user: string; password: string };

  before(async () => {
    ensureBuilt();
    lab = await startLab();
    alice = lab.users[0]!;
    dir = makeTempDir('check-user');
    imapConfig = writeLabConfig(lab, dir);
    const popDir = join(dir, 'pop3');
    mkdirSync(popDir);
    pop3Config = writeLabConfig(lab, popDir, { source: { useImap: false } });
    const c = await openImap(lab.source, alice);
    try {
      for (const s of ['one', 'two', 'three']) await c.append('INBOX', msg(s));
      await c.mailboxCreate('Sent Items');
      await c.append('Sent Items', msg('sent', 'x'.repeat(5000)));
      await c.mailboxCreate(['Projekte', '2020']);
      await c.append('Projekte/2020', msg('archived'));
    } finally {
      await c.logout();
    }
  });

  after(async () => {
    await lab?.stop();
    if (dir) removeDir(dir);
  });

  it('logs in on the source and shows the same plan as migrate --dry-run (--json)', async () => {
    const r = await autoport(
      ['check', '--config', imapConfig, '--user', alice.user, '--password-stdin', '--json'],
      alice.password,
    );
    assert.equal(r.code, 0, `${r.stderr}\n${r.stdout}`);
    const result = JSON.parse(r.stdout) as AccountCheckResult;
    assert.equal(result.ok, true);
    const imap = endpoint(result, 'source.imap');
    assert.equal(imap.loggedInAs, alice.user);
    // Dovecot lists these only after login
    for (const name of ['UIDPLUS', 'CONDSTORE', 'SPECIAL-USE'])
      assert.equal(present(imap, name), true, name);
    assert.ok(
      !imap.transcript.some((l) => l.includes(alice.password)),
      'password kept out of the transcript',
    );

    const dry = await autoport(
      ['migrate', alice.user, '--config', imapConfig, '--password-stdin', '--dry-run', '--json'],
      alice.password,
    );
    assert.equal(dry.code, 0, dry.stderr);
    const plan = JSON.parse(dry.stdout) as DryRunResult;
    assert.deepEqual(result.account.plan, plan);
    assert.equal(result.account.address, alice.user);
    assert.equal(plan.totals.messages, 5);
    // the source's own \Sent is "Sent": "Sent Items" is copied as it is, with a problem noted
    const sent = plan.folders.find((f) => f.source === 'Sent Items');
    assert.equal(sent?.messages, 1);
    assert.ok(sent?.problems.some((p) => /\\Sent/.test(p)));
    assert.ok(plan.folders.some((f) => f.source === 'Projekte/2020' && f.messages === 1));

    // read-only: no state, no ledger, no account on the destination
    assert.equal(existsSync(join(dir, 'state.json')), false);
    assert.equal(existsSync(join(dir, 'ledger.jsonl')), false);
    assert.doesNotMatch(readFileSync(lab.destination.passwdFile, 'utf8'), /alice@/);
  });

  it('prints the capability table and the dry-run plan for a person', async () => {
    const r = await autoport(
      ['check', '--config', imapConfig, '--user', alice.user, '--password-stdin'],
      `${alice.password}\n`,
    );
    assert.equal(r.code, 0, r.stderr);
    const dry = await autoport(
      ['migrate', alice.user, '--config', imapConfig, '--password-stdin', '--dry-run'],
      alice.password,
    );
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(r.stdout, /^source\.imap .* OK$/m);
    assert.match(r.stdout, /result: all \d+ endpoints OK/);
    // the migrate renderer's text, ETA line included, after the check's table
    assert.ok(r.stdout.trimEnd().endsWith(dry.stdout.trimEnd()), r.stdout);
    assert.match(r.stdout, /^ {2}Sent Items \[new\]: 1 msgs, 5 KB\n {4}problem: /m);
    assert.match(r.stdout, /^ {2}total: \d+ folders, 5 msgs/m);
    assert.match(r.stdout, /about \d+:\d\d at \d+ msg\/s/);
  });

  it('over POP3 (source.useImap false): the inbox from LIST, with the POP3 note', async () => {
    const r = await autoport(
      ['check', '--config', pop3Config, '--user', alice.user, '--password-stdin', '--json'],
      alice.password,
    );
    assert.equal(r.code, 0, `${r.stderr}\n${r.stdout}`);
    const result = JSON.parse(r.stdout) as AccountCheckResult;
    const plan = result.account.plan;
    assert.ok(plan);
    assert.deepEqual(
      plan.folders.map((f) => [f.source, f.destination, f.messages]),
      [['INBOX', 'INBOX', 3]],
    );
    assert.ok(plan.problems.some((p) => /POP3/.test(p)));
  });

  it('a wrong password: exit 1, the plan says why, nothing written', async () => {
    const r = await autoport(
      ['check', '--config', imapConfig, '--user', alice.user, '--password-stdin', '--json'],
      'wrong',
    );
    assert.equal(r.code, 1);
    const result = JSON.parse(r.stdout) as AccountCheckResult;
    assert.equal(result.ok, false);
    assert.equal(result.account.plan, undefined);
    assert.equal(result.account.error?.code, 'EAUTH');
    assert.match(r.stderr, /^error: no plan for alice@example\.org: .*\n {2}try: /m);
    assert.doesNotMatch(readFileSync(lab.destination.passwdFile, 'utf8'), /alice@/);
  });

  it('--user needs --password-stdin; without --user the check is the plain one', async () => {
    const bad = await autoport(['check', '--config', imapConfig, '--user', alice.user]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /--user and --password-stdin go together/);

    const plain = await autoport(['check', '--config', imapConfig, '--json']);
    assert.equal(plain.code, 0, plain.stderr);
    const result = JSON.parse(plain.stdout) as Record<string, unknown> & {
      endpoints: EndpointReport[];
    };
    assert.equal('account' in result, false);
    const imap = endpoint(result, 'source.imap');
    assert.equal(imap.loggedInAs, undefined);
    assert.equal(present(imap, 'UIDPLUS'), null, 'unknown without a login');
  });
});
