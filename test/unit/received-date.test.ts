import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  headerFields,
  internalDateOf,
  parseMailDate,
} from '../../src/core/transfer/pop3/received-date.js';

const iso = (d: Date | undefined): string | undefined => d?.toISOString();

test('RFC 5322 dates, obsolete forms included', () => {
  const cases: Array<[string, string | undefined]> = [
    ['Tue, 1 Jul 2003 10:52:37 +0200', '2003-07-01T08:52:37.000Z'],
    ['Tue, 01 Jul 2003 10:52:37 +0200 (CEST)', '2003-07-01T08:52:37.000Z'],
    ['1 Jul 2003 10:52 -0000', '2003-07-01T10:52:00.000Z'],
    [' Thu,\t13 Feb 1969 23:32:54 -0330', '1969-02-14T03:02:54.000Z'],
    ['Fri, 21 Nov 97 09:55:06 GMT', '1997-11-21T09:55:06.000Z'],
    ['Fri, 21 Nov 03 09:55:06 EST', '2003-11-21T14:55:06.000Z'],
    ['Sun, 16 Jun 2024 08:15:00 PDT', '2024-06-16T15:15:00.000Z'],
    ['Mon, 3 Jan 2022 01:02:03 Z', '2022-01-03T01:02:03.000Z'],
    ['(comment) Mon, (more) 3 Jan 2022 01:02:03 +0000 (UTC)', '2022-01-03T01:02:03.000Z'],
    ['Wednesday, 31 Dec 1999 23:59:59 -0800', '2000-01-01T07:59:59.000Z'],
    ['3 January 2022 01:02:03 +0100', '2022-01-03T00:02:03.000Z'],
    ['2021-03-05 12:30:45 +01:00', '2021-03-05T11:30:45.000Z'],
    ['2021-03-05T12:30:45Z', '2021-03-05T12:30:45.000Z'],
    ['Mon, 3 Jan 2022 01:02:03', '2022-01-03T01:02:03.000Z'],
    // not dates
    ['31 Feb 2022 10:00:00 +0000', undefined],
    ['1 Foo 2022 10:00:00 +0000', undefined],
    ['1 Jan 2022 25:00:00 +0000', undefined],
    ['1 Jan 2022 10:00:00 +0199', undefined],
    ['1 Jan 2022 10:00:00 XYZZY', undefined],
    ['yesterday', undefined],
    ['', undefined],
  ];
  for (const [text, want] of cases)
    assert.equal(iso(parseMailDate(text)), want, JSON.stringify(text));
});

test('header fields are unfolded and the body is not read', () => {
  const f = headerFields('Received: from a\r\n\tby b; 1 Jan 2020 00:00:00 +0000\r\nSubject: x');
  assert.deepEqual(f, [
    { name: 'received', value: ' from a\tby b; 1 Jan 2020 00:00:00 +0000' },
    { name: 'subject', value: ' x' },
  ]);
  const msg = Buffer.from('Subject: x\r\n\r\nReceived: from body; 1 Jan 2020 00:00:00 +0000\r\n');
  assert.equal(internalDateOf(msg, new Date('2024-01-01T00:00:00Z')).from, 'now');
});

test('INTERNALDATE: top-most Received, then lower hops, then Date:, then now', () => {
  const now = new Date('2024-05-01T12:00:00Z');
  const at = (text: string): { date: string; from: string } => {
    const r = internalDateOf(Buffer.from(text.replace(/\n/g, '\r\n'), 'latin1'), now);
    return { date: r.date.toISOString(), from: r.from };
  };
  assert.deepEqual(
    at(
      'Received: by store; Tue, 02 Jan 2018 10:00:00 +0100\nReceived: by mx; Tue, 02 Jan 2018 08:00:00 +0000\nDate: Mon, 01 Jan 2018 00:00:00 +0000\n\nx',
    ),
    { date: '2018-01-02T09:00:00.000Z', from: 'received' },
  );
  // the last ";" counts: "id a;b" in the clauses before the date is allowed
  assert.deepEqual(at('Received: from x (helo;odd) by y; 2 Jan 2018 10:00:00 +0000\n\nx'), {
    date: '2018-01-02T10:00:00.000Z',
    from: 'received',
  });
  assert.deepEqual(at('Received: from nowhere\nReceived: by mx; 5 Mar 2021 12:30:45 -0500\n\nx'), {
    date: '2021-03-05T17:30:45.000Z',
    from: 'received',
  });
  assert.deepEqual(at('Received: by mx; garbage\nDate: 5 Mar 2021 12:30:45 +0000\n\nx'), {
    date: '2021-03-05T12:30:45.000Z',
    from: 'date',
  });
  // a date in the future or before 1970 is not believed
  assert.deepEqual(
    at('Received: by mx; 1 Jan 2030 00:00:00 +0000\nDate: 1 Jan 1960 00:00:00 +0000\n\nx'),
    {
      date: now.toISOString(),
      from: 'now',
    },
  );
  assert.deepEqual(at('Subject: none\n\nx'), { date: now.toISOString(), from: 'now' });
  // LF-only messages and 8-bit header bytes do not break parsing
  const lf = Buffer.concat([
    Buffer.from('Subject: \xe4\xf6\n', 'latin1'),
    Buffer.from('Date: 1 Jan 2001 00:00:00 +0000\n\nbody'),
  ]);
  assert.equal(internalDateOf(lf, now).date.toISOString(), '2001-01-01T00:00:00.000Z');
});
