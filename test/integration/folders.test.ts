/**
 * Folder planning and creation against real Dovecots: a Courier-style source ("." and
 * "INBOX.", no SPECIAL-USE attributes) to a Dovecot-style destination ("/", no prefix,
 * with attributes), and the reverse. Checks names byte for byte on the wire, \Noselect
 * containers, special-use mapping, subscriptions, and that a second run changes nothing.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ImapFlow } from 'imapflow';
import { openImap, startDovecot, type DovecotInstance } from '../support/index.js';
import { createFolders, listSide, planFolders } from '../../src/core/transfer/folders/index.js';
import type { FolderPlan } from '../../src/core/transfer/types.js';

const USER = { user: 'folders@example.org', password: 'folder-pass' };
let courier: DovecotInstance;
let dovecot: DovecotInstance;
const clients: ImapFlow[] = [];

before(async () => {
  [courier, dovecot] = await Promise.all([
    startDovecot({
      name: 'fold-courier',
      layout: 'courier',
      users: [USER],
      quirks: { specialUse: false },
    }),
    startDovecot({ name: 'fold-dovecot', layout: 'dovecot', users: [USER] }),
  ]);
});
after(async () => {
  await Promise.all(clients.map((c) => c.logout().catch(() => undefined)));
  await Promise.all([courier?.stop(), dovecot?.stop()]);
});

async function open(inst: DovecotInstance): Promise<ImapFlow> {
  const c = await openImap(inst, USER);
  clients.push(c);
  return c;
}

/** Wire name -> { flags, subscribed } as the server lists it. */
async function wireView(
  c: ImapFlow,
): Promise<Map<string, { flags: string[]; subscribed: boolean }>> {
  const side = await listSide(c);
  return new Map(
    side.mailboxes.map((m) => [m.wire ?? m.path, { flags: m.flags, subscribed: m.subscribed }]),
  );
}

const dest = (plan: FolderPlan, source: string): string => {
  const e = plan.entries.find((x) => x.source === source);
  assert.ok(e, `no entry for ${source}`);
  return e.destination;
};

test('Courier-style source to Dovecot-style destination', async () => {
  const src = await open(courier);
  for (const name of [
    'INBOX.Gesendete Elemente',
    'INBOX.Entw\u00fcrfe',
    'INBOX.Deep.Er.Child',
    'INBOX.\u65e5\u672c\u8a9e',
    'INBOX.a&b',
    'INBOX.x\u{1F600}',
    'INBOX.Hidden',
  ]) {
    await src.mailboxCreate(name);
  }
  await src.mailboxUnsubscribe('INBOX.Hidden');
  const dst = await open(dovecot);

  const plan = planFolders(await listSide(src), await listSide(dst));
  // Source has no attributes: roles come from the names, onto the destination's own folders.
  assert.equal(dest(plan, 'INBOX.Sent'), 'Sent');
  assert.equal(dest(plan, 'INBOX.Trash'), 'Trash');
  assert.equal(dest(plan, 'INBOX.Gesendete Elemente'), 'Gesendete Elemente');
  assert.match(
    plan.entries.find((e) => e.source === 'INBOX.Gesendete Elemente')?.problems.join() ?? '',
    /also looks like a \\Sent/,
  );
  assert.equal(dest(plan, 'INBOX.Deep'), 'Deep');
  assert.equal(dest(plan, 'INBOX.Deep.Er.Child'), 'Deep/Er/Child');

  const first = await createFolders(dst, plan);
  assert.deepEqual(first.failed, []);
  assert.deepEqual(
    [...first.created].sort(),
    [
      'Deep/Er/Child',
      'Entw\u00fcrfe',
      'Gesendete Elemente',
      'Hidden',
      'a&b',
      'x\u{1F600}',
      '\u65e5\u672c\u8a9e',
    ].sort(),
  );

  const view = await wireView(dst);
  // names arrive byte for byte in modified UTF-7 (RFC 3501 5.1.3)
  for (const wire of [
    'Entw&APw-rfe',
    '&ZeVnLIqe-',
    'a&-b',
    'x&2D3eAA-',
    'Gesendete Elemente',
    'Deep/Er/Child',
  ]) {
    assert.ok(view.has(wire), `destination lacks ${wire}; has ${[...view.keys()].join(', ')}`);
  }
  // containers exist as \Noselect (created by their child, never selected)
  assert.ok(view.get('Deep')?.flags.includes('\\Noselect'));
  assert.ok(view.get('Deep/Er')?.flags.includes('\\Noselect'));
  // no second Sent/Trash
  assert.equal([...view.keys()].filter((k) => /^(Sent|Trash)/.test(k)).length, 2);
  // subscriptions follow the source
  assert.equal(view.get('Hidden')?.subscribed, false);
  for (const w of [
    'Entw&APw-rfe',
    '&ZeVnLIqe-',
    'a&-b',
    'Deep/Er/Child',
    'Sent',
    'Gesendete Elemente',
  ]) {
    assert.equal(view.get(w)?.subscribed, true, w);
  }

  // idempotent: plan again, create again, nothing to do
  const again = planFolders(await listSide(src), await listSide(dst));
  assert.ok(again.entries.filter((e) => !e.nonExistent).every((e) => e.existsOnDestination));
  const second = await createFolders(dst, again);
  assert.deepEqual(second, {
    created: [],
    existing: second.existing,
    subscribed: [],
    unsubscribed: [],
    failed: [],
  });
  assert.deepEqual(await wireView(dst), view);
});

test('Dovecot-style source to Courier-style destination', async () => {
  const user2 = { user: 'reverse@example.org', password: 'rev-pass' };
  await Promise.all([
    dovecot.addUser(user2.user, user2.password),
    courier.addUser(user2.user, user2.password),
  ]);
  const src = await openImap(dovecot, user2);
  const dst = await openImap(courier, user2);
  clients.push(src, dst);
  for (const name of ['foo', 'INBOX/foo', 'a.b/c', 'x', 'Sent Items', 'Projects/2024/Q1'])
    await src.mailboxCreate(name);
  await src.mailboxCreate('Box/'); // an empty \Noselect container
  await src.mailboxUnsubscribe('Box/');
  await src.mailboxUnsubscribe('x');

  const plan = planFolders(await listSide(src), await listSide(dst));
  assert.equal(dest(plan, 'Sent'), 'INBOX.Sent');
  assert.equal(dest(plan, 'foo'), 'INBOX.foo');
  assert.equal(dest(plan, 'INBOX/foo'), 'INBOX.foo (2)');
  assert.equal(dest(plan, 'a.b/c'), 'INBOX.a\u2024b.c');
  assert.equal(dest(plan, 'Box'), 'INBOX.Box');
  assert.equal(dest(plan, 'Sent Items'), 'INBOX.Sent Items');

  const res = await createFolders(dst, plan);
  assert.deepEqual(res.failed, []);
  const view = await wireView(dst);
  for (const wire of [
    'INBOX.foo',
    'INBOX.foo (2)',
    'INBOX.a&ICQ-b.c',
    'INBOX.x',
    'INBOX.Box',
    'INBOX.Projects.2024.Q1',
    'INBOX.Sent Items',
  ]) {
    assert.ok(view.has(wire), `destination lacks ${wire}; has ${[...view.keys()].join(', ')}`);
  }
  assert.equal(view.get('INBOX.x')?.subscribed, false);
  assert.equal(view.get('INBOX.Projects.2024.Q1')?.subscribed, true);
  // no junk subscription left behind by creating "INBOX.Box." with its trailing delimiter
  assert.equal(view.get('INBOX.Box')?.subscribed, false);
  const subscriptions = (await courier.doveadm(['mailbox', 'list', '-s', '-u', user2.user]))
    .split('\n')
    .filter(Boolean);
  assert.ok(subscriptions.includes('INBOX.Projects.2024.Q1'), subscriptions.join(', '));
  assert.ok(
    !subscriptions.some((s) => s.endsWith('.')),
    `junk subscription left: ${subscriptions.join(', ')}`,
  );
  const second = await createFolders(dst, planFolders(await listSide(src), await listSide(dst)));
  assert.deepEqual(
    [second.created, second.subscribed, second.unsubscribed, second.failed],
    [[], [], [], []],
  );
});
