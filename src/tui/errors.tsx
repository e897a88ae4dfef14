/** The last errors the gateway saw: refused logins, failed transfers, broken sessions. */
import type { RecentError } from '../core/control/protocol.js';
import { formatClock } from './format.js';
import { errorKey } from './rows.js';
import { Table, type Column } from './table.js';

const COLUMNS: Column<RecentError>[] = [
  { title: 'TIME', width: 8, drop: 3, cell: (r) => formatClock(r.at) },
  { title: 'KIND', width: 8, drop: 2, cell: (r) => r.kind },
  { title: 'SUBJECT', width: 20, drop: 1, cell: (r) => r.subject },
  { title: 'MESSAGE', width: 20, grow: true, cell: (r) => r.message },
];

export interface ErrorsViewProps {
  rows: readonly RecentError[];
  width: number;
  maxRows: number;
  selected: number;
  filtered: boolean;
}

export function ErrorsView({ rows, width, maxRows, selected, filtered }: ErrorsViewProps) {
  return (
    <Table
      columns={COLUMNS}
      rows={rows}
      rowKey={errorKey}
      width={width}
      maxRows={maxRows}
      selected={selected}
      empty={filtered ? 'no error matches the filter' : 'no recent errors'}
    />
  );
}
