/** Plain-text views of `accounts list` and `accounts show` (the JSON is the result itself). */
import type { AccountDetail, AccountSummary } from '../core/accounts/query.js';
import type { AccountState } from '../core/state/types.js';
import { plain, type Style, type Tone } from './style.js';
import { renderTable } from './table.js';

const TONE: Partial<Record<AccountState, Tone>> = {
  migrated: 'ok',
  transferring: 'warn',
  failed: 'bad',
};

/** folder names are the user's own and can be long: cut, not wrapped */
const FOLDER = { max: 40 };

function stateWord(state: AccountState, style: Style): string {
  const tone = TONE[state];
  return tone ? style.status(state, tone) : state;
}

const day = (iso?: string): string => (iso ? iso.slice(0, 16).replace('T', ' ') : '');

export function renderAccountList(
  list: readonly AccountSummary[],
  width?: number,
  style: Style = plain,
): string {
  if (list.length === 0) return 'no accounts\n';
  const rows = list.map((a) => [
    a.address,
    stateWord(a.state, style),
    a.hasCredentials ? 'yes' : 'no',
    a.imported ? 'yes' : 'no',
    day(a.lastLogin),
    a.transfer ? `${a.transfer.copied}/${a.transfer.messages}` : '',
    a.reason ?? a.lastError?.detail ?? '',
  ]);
  return (
    renderTable(rows, {
      header: ['ADDRESS', 'STATE', 'PASSWORD', 'IMPORTED', 'LAST LOGIN', 'COPIED', 'REASON'],
      headerStyle: style.header,
      ...(width ? { maxWidth: width } : {}),
    }) + `${list.length} account(s)\n`
  );
}

export function renderAccount(a: AccountDetail, width?: number, style: Style = plain): string {
  const t = a.transfer;
  const fields: [string, string][] = [
    ['address', a.address],
    ['state', stateWord(a.state, style)],
    ['password stored', a.hasCredentials ? 'yes' : 'no'],
    ['imported', a.imported ? 'yes' : 'no'],
    ['first seen', a.firstSeen ?? ''],
    ['last login', a.lastLogin ?? ''],
    ['last seen', a.lastSeen ?? ''],
    ['state since', a.updatedAt],
    ['reason', a.reason ?? ''],
    ['attempts', a.attempts === undefined ? '' : String(a.attempts)],
    ['next attempt', a.nextAttemptAt ?? ''],
    [
      'transfer',
      t
        ? `${t.copied} copied, ${t.skipped} skipped, ${t.failed} failed of ${t.messages} (${t.bytes} bytes)` +
          (t.finishedAt ? `, finished ${t.finishedAt}` : '')
        : '',
    ],
  ];
  let out = renderTable(
    fields.filter(([, v]) => v !== ''),
    width ? { maxWidth: width } : {},
  );
  if (a.folders.length > 0)
    out +=
      '\n' +
      renderTable(
        a.folders.map((f) => [
          f.source,
          f.destination,
          String(f.messages),
          String(f.copied),
          String(f.failed),
        ]),
        {
          header: ['FOLDER', 'ON DESTINATION', 'MESSAGES', 'COPIED', 'FAILED'],
          headerStyle: style.header,
          columns: [FOLDER, FOLDER],
        },
      );
  if (a.errors.length > 0)
    out +=
      '\n' +
      renderTable(
        a.errors.map((e) => [e.at, e.cause, e.detail ?? '']),
        {
          header: ['ERROR AT', 'CAUSE', 'DETAIL'],
          headerStyle: style.header,
          ...(width ? { maxWidth: width } : {}),
        },
      );
  return out;
}
