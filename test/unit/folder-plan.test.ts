import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planFolders, type PlanSide } from '../../src/core/transfer/folders/plan.js';
import {
  specialUseFromFlags,
  specialUseFromName,
} from '../../src/core/transfer/folders/special-use.js';
import type { FolderPlan, FolderPlanEntry, ListedMailbox } from '../../src/core/transfer/types.js';

function mb(
  path: string,
  delimiter: string | null,
  flags: string[] = [],
  subscribed = true,
): ListedMailbox {
  return { path, delimiter, flags, subscribed };
}
const courier = (names: Array<string | ListedMailbox>): PlanSide => ({
  namespace: { prefix: 'INBOX.', delimiter: '.' },
  mailboxes: names.map((n) => (typeof n === 'string' ? mb(n, '.') : n)),
});
const dovecot = (names: Array<string | ListedMailbox>): PlanSide => ({
  namespace: { prefix: '', delimiter: '/' },
  mailboxes: names.map((n) => (typeof n === 'string' ? mb(n, '/') : n)),
});

function entry(plan: FolderPlan, source: string): FolderPlanEntry {
  const e = plan.entries.find((x) => x.source === source);
  assert.ok(e, `no plan entry for ${source}; have ${plan.entries.map((x) => x.source).join(', ')}`);
  return e;
}
const dests = (plan: FolderPlan): Record<string, string> =>
  Object.fromEntries(plan.entries.map((e) => [e.source, e.destination]));

test('special-use: attributes and localized names', () => {
  assert.equal(specialUseFromFlags(['\\HasNoChildren', '\\sent']), '\\Sent');
  assert.equal(specialUseFromFlags(['\\Noselect']), undefined);
  assert.equal(specialUseFromName('Gesendete Elemente'), '\\Sent');
  assert.equal(specialUseFromName('SENT ITEMS'), '\\Sent');
  assert.equal(specialUseFromName('\u00c9l\u00e9ments envoy\u00e9s'), '\\Sent');
  // decomposed accents (NFD) as macOS file systems hand them out
  assert.equal(specialUseFromName('E\u0301le\u0301ments supprime\u0301s'), '\\Trash');
  assert.equal(specialUseFromName('Entw\u00fcrfe'), '\\Drafts');
  assert.equal(specialUseFromName('Junk-E-Mail'), '\\Junk');
  assert.equal(specialUseFromName('Junk E-mail'), '\\Junk');
  assert.equal(specialUseFromName('Archiv'), '\\Archive');
  assert.equal(specialUseFromName('Papierkorb'), '\\Trash');
  assert.equal(specialUseFromName('Sent stuff'), undefined);
});

test('Courier-style source (".", "INBOX.") to Dovecot-style destination ("/", no prefix)', () => {
  const src = courier([
    'INBOX',
    'INBOX.Sent',
    'INBOX.Drafts',
    'INBOX.Entw\u00fcrfe',
    mb('INBOX.Work', '.', ['\\Noselect', '\\HasChildren']),
    'INBOX.Work.Projects',
    mb('INBOX.Work.Projects.2024', '.', [], false),
    'INBOX.Deleted Items',
    'INBOX.a&b',
    'INBOX.x/y',
  ]);
  const dst = dovecot([
    'INBOX',
    mb('Sent', '/', ['\\Sent']),
    mb('Drafts', '/', ['\\Drafts']),
    mb('Trash', '/', ['\\Trash']),
    mb('Junk', '/', ['\\Junk']),
  ]);
  const plan = planFolders(src, dst);
  assert.deepEqual(dests(plan), {
    INBOX: 'INBOX',
    'INBOX.Sent': 'Sent',
    'INBOX.Drafts': 'Drafts',
    'INBOX.Entw\u00fcrfe': 'Entw\u00fcrfe',
    'INBOX.Work': 'Work',
    'INBOX.Work.Projects': 'Work/Projects',
    'INBOX.Work.Projects.2024': 'Work/Projects/2024',
    'INBOX.Deleted Items': 'Trash',
    'INBOX.a&b': 'a&b',
    'INBOX.x/y': 'x\u2215y',
  });
  assert.deepEqual(entry(plan, 'INBOX.Work.Projects.2024').segments, ['Work', 'Projects', '2024']);
  assert.equal(entry(plan, 'INBOX.Sent').specialUse, '\\Sent');
  assert.equal(entry(plan, 'INBOX.Sent').specialUseFrom, 'name');
  assert.equal(entry(plan, 'INBOX.Sent').existsOnDestination, true);
  assert.equal(entry(plan, 'INBOX.Deleted Items').specialUse, '\\Trash');
  // two folders claim \Drafts by name: the first listed gets the role, the other is a normal folder
  assert.equal(entry(plan, 'INBOX.Entw\u00fcrfe').specialUse, undefined);
  assert.match(
    entry(plan, 'INBOX.Entw\u00fcrfe').problems.join(),
    /also looks like a \\Drafts folder/,
  );
  assert.equal(entry(plan, 'INBOX.Work').noselect, true);
  assert.equal(entry(plan, 'INBOX.Work').existsOnDestination, false);
  assert.equal(entry(plan, 'INBOX.Work.Projects.2024').subscribed, false);
  assert.match(entry(plan, 'INBOX.x/y').problems.join(), /hierarchy delimiter "\/"/);
  assert.deepEqual(entry(plan, 'INBOX.a&b').problems, []);
  // parents before children
  const order = plan.entries.map((e) => e.destination);
  assert.ok(order.indexOf('Work') < order.indexOf('Work/Projects'));
  assert.ok(order.indexOf('Work/Projects') < order.indexOf('Work/Projects/2024'));
  assert.deepEqual(plan.destination, { prefix: '', delimiter: '/' });
});

test('Dovecot-style source to Courier-style destination (the reverse)', () => {
  const src = dovecot([
    'INBOX',
    'foo',
    'INBOX/foo',
    'INBOX/Sent',
    mb('Sent', '/', ['\\Sent']),
    'Sent Items',
    'a.b',
    'a.b/c',
    mb('Archive', '/', ['\\Noselect']),
    'Archive/2019',
    '\u65e5\u672c\u8a9e',
  ]);
  const dst = courier([
    'INBOX',
    mb('INBOX.Sent', '.', ['\\Sent']),
    mb('INBOX.Trash', '.', ['\\Trash']),
  ]);
  const plan = planFolders(src, dst);
  assert.deepEqual(dests(plan), {
    INBOX: 'INBOX',
    foo: 'INBOX.foo',
    // Inbox > foo is what the user sees; on Courier that is "INBOX.foo", taken by the top-level foo
    'INBOX/foo': 'INBOX.foo (2)',
    'INBOX/Sent': 'INBOX.Sent (2)',
    Sent: 'INBOX.Sent',
    'Sent Items': 'INBOX.Sent Items',
    'a.b': 'INBOX.a\u2024b',
    'a.b/c': 'INBOX.a\u2024b.c',
    Archive: 'INBOX.Archive',
    'Archive/2019': 'INBOX.Archive.2019',
    '\u65e5\u672c\u8a9e': 'INBOX.\u65e5\u672c\u8a9e',
  });
  assert.equal(entry(plan, 'Sent').specialUseFrom, 'attribute');
  assert.equal(entry(plan, 'Sent Items').specialUse, undefined);
  assert.match(
    entry(plan, 'Sent Items').problems.join(),
    /also looks like a \\Sent folder \("Sent" has the role\)/,
  );
  // name-based roles only at the top level: INBOX/Sent is a plain folder
  assert.equal(entry(plan, 'INBOX/Sent').specialUse, undefined);
  assert.match(entry(plan, 'INBOX/foo').problems.join(), /would land in "INBOX.foo"/);
  assert.match(
    entry(plan, 'a.b').problems.join(),
    /contains the destination's hierarchy delimiter "\."/,
  );
  assert.deepEqual(entry(plan, 'a.b/c').problems, []);
  // a \Noselect container never gets a role by name
  assert.equal(entry(plan, 'Archive').specialUse, undefined);
});

test('Dovecot to Dovecot keeps INBOX children and names as they are', () => {
  const plan = planFolders(
    dovecot(['INBOX', 'INBOX/foo', 'INBOX/foo/bar', 'a.b']),
    dovecot(['INBOX']),
  );
  assert.deepEqual(dests(plan), {
    INBOX: 'INBOX',
    'INBOX/foo': 'INBOX/foo',
    'INBOX/foo/bar': 'INBOX/foo/bar',
    'a.b': 'a.b',
  });
  assert.deepEqual(entry(plan, 'INBOX/foo/bar').segments, ['INBOX', 'foo', 'bar']);
  for (const e of plan.entries) assert.deepEqual(e.problems, [], e.source);
});

test('Courier to Courier is the identity', () => {
  const names = ['INBOX', 'INBOX.Sent', 'INBOX.a', 'INBOX.a.b', 'INBOX.Gel\u00f6schte Elemente'];
  const plan = planFolders(courier(names), courier(['INBOX', mb('INBOX.Trash', '.', ['\\Trash'])]));
  assert.deepEqual(dests(plan), {
    INBOX: 'INBOX',
    'INBOX.Sent': 'INBOX.Sent',
    'INBOX.a': 'INBOX.a',
    'INBOX.a.b': 'INBOX.a.b',
    'INBOX.Gel\u00f6schte Elemente': 'INBOX.Trash',
  });
});

test('an attribute beats a name, and the role folder is never duplicated', () => {
  const src = dovecot(['INBOX', 'Sent', mb('Gesendet', '/', ['\\Sent']), 'Sent/2019']);
  const plan = planFolders(src, dovecot(['INBOX', mb('Sent', '/', ['\\Sent'])]));
  assert.equal(entry(plan, 'Gesendet').destination, 'Sent');
  assert.equal(entry(plan, 'Gesendet').specialUse, '\\Sent');
  // the plain "Sent" of the source must not merge into the destination's \Sent folder
  assert.equal(entry(plan, 'Sent').destination, 'Sent (2)');
  assert.equal(entry(plan, 'Sent/2019').destination, 'Sent (2)/2019');
  assert.equal(new Set(plan.entries.map((e) => e.destination)).size, plan.entries.length);
});

test('role folders go to the destination folder found by name when it has no attributes', () => {
  const src = dovecot([
    'INBOX',
    mb('Sent', '/', ['\\Sent']),
    'Sent/old',
    mb('Junk', '/', ['\\Junk']),
  ]);
  const plan = planFolders(src, dovecot(['INBOX', 'Sent Items', 'Junk-E-Mail']));
  assert.equal(entry(plan, 'Sent').destination, 'Sent Items');
  assert.equal(entry(plan, 'Sent').existsOnDestination, true);
  assert.equal(entry(plan, 'Sent/old').destination, 'Sent Items/old');
  assert.equal(entry(plan, 'Junk').destination, 'Junk-E-Mail');
});

test('a role the destination lacks keeps the source name and is created', () => {
  const plan = planFolders(
    dovecot(['INBOX', mb('Brouillons', '/', ['\\Drafts'])]),
    dovecot(['INBOX']),
  );
  const e = entry(plan, 'Brouillons');
  assert.equal(e.destination, 'Brouillons');
  assert.equal(e.specialUse, '\\Drafts');
  assert.equal(e.existsOnDestination, false);
});

test('\\All and \\Flagged are marked but not mapped', () => {
  const plan = planFolders(
    dovecot(['INBOX', mb('All Mail', '/', ['\\All'])]),
    dovecot(['INBOX', mb('Virtual/All', '/', ['\\All'])]),
  );
  const e = entry(plan, 'All Mail');
  assert.equal(e.destination, 'All Mail');
  assert.equal(e.specialUse, '\\All');
  assert.match(e.problems.join(), /copied again/);
});

test('mapSpecialUse: false copies every folder under its own name', () => {
  const plan = planFolders(
    dovecot(['INBOX', mb('Gesendet', '/', ['\\Sent'])]),
    dovecot(['INBOX', mb('Sent', '/', ['\\Sent'])]),
    {
      mapSpecialUse: false,
    },
  );
  assert.equal(entry(plan, 'Gesendet').destination, 'Gesendet');
  assert.equal(entry(plan, 'Gesendet').specialUse, undefined);
});

test('skips other namespaces, phantoms and names outside the prefix', () => {
  const src: PlanSide = {
    namespace: { prefix: 'INBOX.', delimiter: '.', otherPrefixes: ['shared.'] },
    mailboxes: [
      mb('INBOX', '.'),
      mb('shared.team', '.'),
      mb('INBOX.gone', '.', ['\\NonExistent'], false),
      mb('INBOX.gone-but-subscribed', '.', ['\\NonExistent'], true),
      mb('Other', '.'),
    ],
  };
  const plan = planFolders(src, dovecot(['INBOX']));
  assert.deepEqual(
    plan.entries.map((e) => e.source),
    ['INBOX', 'INBOX.gone-but-subscribed'],
  );
  assert.equal(entry(plan, 'INBOX.gone-but-subscribed').noselect, true);
  assert.equal(entry(plan, 'INBOX.gone-but-subscribed').nonExistent, true);
  assert.match(
    entry(plan, 'INBOX.gone-but-subscribed').problems.join(),
    /only the subscription is copied/,
  );
  assert.deepEqual(
    (plan.skipped ?? []).map((s) => s.source),
    ['shared.team', 'INBOX.gone', 'Other'],
  );
  assert.match((plan.skipped ?? [])[0]?.reason ?? '', /shared namespace/);
});

test('problems the destination may refuse are reported', () => {
  const long = 'x'.repeat(300);
  const plan = planFolders(
    courier([
      'INBOX',
      `INBOX.${long}`,
      'INBOX.ctl\u0001char',
      'INBOX.~home',
      'INBOX. padded ',
      'INBOX.a..b',
    ]),
    dovecot(['INBOX']),
  );
  assert.match(entry(plan, `INBOX.${long}`).problems.join(), /300 bytes/);
  assert.match(entry(plan, 'INBOX.ctl\u0001char').problems.join(), /control characters/);
  assert.match(entry(plan, 'INBOX.~home').problems.join(), /starts with "~"/);
  assert.match(entry(plan, 'INBOX. padded ').problems.join(), /space/);
  assert.equal(entry(plan, 'INBOX.a..b').destination, 'a/_/b');
  assert.match(entry(plan, 'INBOX.a..b').problems.join(), /empty name level/);
});

test('a wire spelling that does not round-trip is reported', () => {
  const src = dovecot([
    { path: 'a', wire: '&AGE-', delimiter: '/', flags: [], subscribed: true },
    'INBOX',
  ]);
  const plan = planFolders(src, dovecot(['INBOX']));
  assert.match(entry(plan, 'a').problems.join(), /not valid modified UTF-7/);
  const ok = planFolders(
    dovecot([
      { path: 'Entw\u00fcrfe', wire: 'Entw&APw-rfe', delimiter: '/', flags: [], subscribed: true },
    ]),
    dovecot([]),
  );
  assert.deepEqual(entry(ok, 'Entw\u00fcrfe').problems, []);
});

test('the delimiter is taken from LIST when NAMESPACE gave none, and flat destinations join levels', () => {
  const src: PlanSide = {
    namespace: { prefix: '', delimiter: null },
    mailboxes: [mb('a/b', '/'), mb('a', '/')],
  };
  const plan = planFolders(src, { namespace: { prefix: '', delimiter: null }, mailboxes: [] });
  assert.deepEqual(plan.source, { prefix: '', delimiter: '/' });
  assert.deepEqual(entry(plan, 'a/b').segments, ['a', 'b']);
  assert.equal(entry(plan, 'a/b').destination, 'ab');
  assert.match(entry(plan, 'a/b').problems.join(), /no hierarchy/);
});

test('existing destination folders are recognised (idempotent re-plan)', () => {
  const plan = planFolders(
    courier(['INBOX', 'INBOX.a', 'INBOX.a.b']),
    dovecot(['INBOX', 'a', 'a/b']),
  );
  assert.ok(plan.entries.every((e) => e.existsOnDestination));
  assert.deepEqual(dests(plan), { INBOX: 'INBOX', 'INBOX.a': 'a', 'INBOX.a.b': 'a/b' });
});

test('implicit Maildir++ parents (\\NonExistent with children) are kept as containers', () => {
  const src = courier([
    'INBOX',
    mb('INBOX.Deep', '.', ['\\NonExistent', '\\HasChildren', '\\Noselect'], false),
    mb('INBOX.Deep.Er', '.', ['\\NonExistent', '\\HasChildren', '\\Noselect'], false),
    'INBOX.Deep.Er.Child',
  ]);
  const plan = planFolders(src, dovecot(['INBOX']));
  assert.deepEqual(dests(plan), {
    INBOX: 'INBOX',
    'INBOX.Deep': 'Deep',
    'INBOX.Deep.Er': 'Deep/Er',
    'INBOX.Deep.Er.Child': 'Deep/Er/Child',
  });
  assert.equal(entry(plan, 'INBOX.Deep').nonExistent, true);
  assert.equal(entry(plan, 'INBOX.Deep').noselect, true);
  assert.deepEqual(entry(plan, 'INBOX.Deep').problems, []);
  assert.equal(plan.skipped, undefined);
});

test('"/" inside a name is replaced on "."-servers too (Maildir++ refuses it)', () => {
  const plan = planFolders(dovecot(['INBOX', 'a.b/c']), courier(['INBOX']));
  assert.equal(entry(plan, 'a.b/c').destination, 'INBOX.a\u2024b.c');
  const src: PlanSide = {
    namespace: { prefix: '', delimiter: '\\' },
    mailboxes: [mb('x/y.z\\w', '\\')],
  };
  const p2 = planFolders(src, courier(['INBOX']));
  assert.equal(entry(p2, 'x/y.z\\w').destination, 'INBOX.x\u2215y\u2024z.w');
  assert.match(
    entry(p2, 'x/y.z\\w').problems.join(),
    /hierarchy delimiter "\." and "\/", which Maildir\+\+ servers refuse/,
  );
});

test('among name matches the destination spelling wins, whatever the LIST order', () => {
  const src = courier(['INBOX', 'INBOX.Gesendete Elemente', 'INBOX.Sent Items', 'INBOX.Sent']);
  const toSent = planFolders(src, dovecot(['INBOX', mb('Sent', '/', ['\\Sent'])]));
  assert.equal(entry(toSent, 'INBOX.Sent').destination, 'Sent');
  assert.equal(entry(toSent, 'INBOX.Gesendete Elemente').destination, 'Gesendete Elemente');
  const toGerman = planFolders(src, dovecot(['INBOX', mb('Gesendete Elemente', '/', ['\\Sent'])]));
  assert.equal(entry(toGerman, 'INBOX.Gesendete Elemente').destination, 'Gesendete Elemente');
  assert.equal(entry(toGerman, 'INBOX.Gesendete Elemente').specialUse, '\\Sent');
  assert.equal(entry(toGerman, 'INBOX.Sent').specialUse, undefined);
  // no destination folder of that role: the most common spelling wins
  const none = planFolders(src, dovecot(['INBOX']));
  assert.equal(entry(none, 'INBOX.Sent').specialUse, '\\Sent');
  assert.equal(entry(none, 'INBOX.Sent Items').specialUse, undefined);
});
