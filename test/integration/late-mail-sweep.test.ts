/**
 * Late-mail sweeps end to end, real Dovecots as source and destination: an account moved
 * through `autoport proxy` gets mail delivered into its source mailbox after its switch
 * (as a queued or sieve-filed delivery would); the sweeps after the switch copy it to the
 * destination exactly once, a message the user deleted on the destination meanwhile is
 * not brought back, nor a folder the user deleted there, and the account stays migrated.
 */
import assert from 'node:assert/strict';
import { readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sideFilePath } from '../../src/core/state/side-files.js';
import { makeMessage, openImap } from '../support/index.js';
import {
  FAST_BRAKES,
  gatewayImap,
  nextEvent,
  type ProxyLab,
  startProxyLab,
} from './proxy-support.js';

const alice = { user: 'alice@example.org', password: 'alice-secret' };
const msg = (subject: string): Buffer =>
  makeMessage({ from: 'x@example.org', to: alice.user, subject, body: `${subject}\n` });

async function subjects(p: ProxyLab, side: 'source' | 'destination', folder: string) {
  const c = await openImap(p.lab[side], alice);
  try {
    await c.mailboxOpen(folder);
    const out: string[] = [];
    for await (const m of c.fetch('1:*', { envelope: true })) out.push(m.envelope?.subject ?? '');
    return out.sort();
  } finally {
    await c.logout();
  }
}

async function append(p: ProxyLab, side: 'source' | 'destination', folder: string, s: string) {
  const c = await openImap(p.lab[side], alice);
  try {
    await c.append(folder, msg(s));
  } finally {
    await c.logout();
  }
}

describe('late-mail sweep after the switch', { timeout: 180_000 }, () => {
  let p: ProxyLab;
  before(async () => {
    p = await startProxyLab({
      lab: { users: [alice] },
      workers: true,
      deps: {
        limits: {
          ...FAST_BRAKES,
          workerPollMs: 100,
          sessionQuietMaxWaitMs: 60_000,
          lateMailSweepMs: [3_000, 6_000],
        },
      },
    });
    const c = await openImap(p.lab.source, alice);
    await c.mailboxCreate('Lists');
    await c.mailboxCreate('Old');
    await c.logout();
    for (const s of ['m1', 'm2', 'm3']) await append(p, 'source', 'INBOX', s);
    await append(p, 'source', 'Lists', 'list1');
    await append(p, 'source', 'Old', 'old1');
  });
  after(async () => {
    await p?.stop();
  });

  it('copies late mail once, keeps the user deletions, and the account stays migrated', async () => {
    const finished = nextEvent(p, 'transfer.finished', (e) => e.address === alice.user);
    const c = gatewayImap(p.imapPort, alice.user, alice.password);
    await c.connect();
    await c.logout();
    const fin = await finished;
    assert.equal(fin.ok, true, fin.detail);
    const rec = await p.store.get(alice.user);
    assert.equal(rec?.state, 'migrated');
    assert.equal(rec?.sweepAt?.length, 2, 'both sweep times are on the record');
    const firstSweep = nextEvent(p, 'transfer.swept', (e) => e.address === alice.user);

    // the user deletes m2 on the destination; late mail reaches the source
    const d = await openImap(p.lab.destination, alice);
    await d.mailboxOpen('INBOX');
    const found = await d.search({ subject: 'm2' });
    assert.equal((found || []).length, 1);
    await d.messageDelete(found as number[]);
    await d.mailboxDelete('Old');
    await d.logout();
    await append(p, 'source', 'INBOX', 'late-inbox');
    await append(p, 'source', 'Lists', 'late-list');

    const first = await firstSweep;
    assert.equal(first.error, undefined);
    assert.equal(first.messages, 2);
    const secondSweep = await nextEvent(p, 'transfer.swept', (e) => e.address === alice.user);
    assert.equal(secondSweep.error, undefined);
    assert.equal(secondSweep.messages, 0, 'the second sweep finds nothing new');

    assert.deepEqual(await subjects(p, 'destination', 'INBOX'), ['late-inbox', 'm1', 'm3']);
    assert.deepEqual(await subjects(p, 'destination', 'Lists'), ['late-list', 'list1']);
    const left = await openImap(p.lab.destination, alice);
    const names = (await left.list()).map((f) => f.path);
    await left.logout();
    assert.ok(
      !names.includes('Old'),
      `a folder the user deleted stays deleted: ${names.join(', ')}`,
    );
    const done = await p.store.get(alice.user);
    assert.equal(done?.state, 'migrated');
    assert.equal(done?.sweepAt, undefined, 'no sweep left after the last one');
    assert.equal(done?.transfer?.swept?.messages, 2);
    assert.match(p.logText(), /late-mail sweep of alice@example\.org: 2 message\(s\) copied/);
  });

  it("a sweep on a node without the move's checkpoints copies only what came after the move", async () => {
    // another node moved the account: its copy checkpoints are not here (the record is)
    const dir = dirname(sideFilePath(p.store, alice.user, 'x').absolute);
    for (const f of readdirSync(dir))
      if (decodeURIComponent(f).startsWith('uidmap')) rmSync(join(dir, f));
    await append(p, 'source', 'INBOX', 'later-inbox');
    const swept = nextEvent(p, 'transfer.swept', (e) => e.address === alice.user);
    await p.store.update(alice.user, (r) => void (r.sweepAt = [new Date().toISOString()]));
    const e = await swept;
    assert.equal(e.error, undefined);
    assert.equal(e.messages, 1, 'only the new message');
    assert.deepEqual(await subjects(p, 'destination', 'INBOX'), [
      'late-inbox',
      'later-inbox',
      'm1',
      'm3',
    ]);
    assert.deepEqual(await subjects(p, 'destination', 'Lists'), ['late-list', 'list1']);
  });
});
