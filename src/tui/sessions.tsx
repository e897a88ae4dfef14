/** Open sessions: who is connected, from where, routed where, for how long, how much. */
import type { LiveSession } from '../core/control/protocol.js';
import { formatAge, formatBytes, msBetween } from './format.js';
import { nodeColumn, Table, type Column } from './table.js';

function columns(now: string, nodes: boolean): Column<LiveSession>[] {
  return [
    ...(nodes ? [nodeColumn<LiveSession>()] : []),
    { title: 'PROTO', width: 10, cell: (r) => r.listener || r.protocol },
    { title: 'ACCOUNT', width: 14, grow: true, cell: (r) => r.user ?? '-' },
    { title: 'CLIENT', width: 15, drop: 4, cell: (r) => r.client },
    { title: 'ROUTE', width: 11, drop: 1, cell: (r) => r.route ?? '-' },
    { title: 'TLS', width: 3, drop: 5, cell: (r) => (r.tls ? 'yes' : 'no') },
    { title: 'TIME', width: 7, align: 'right', cell: (r) => formatAge(msBetween(r.openedAt, now)) },
    { title: 'IN', width: 8, align: 'right', drop: 3, cell: (r) => formatBytes(r.bytesIn) },
    { title: 'OUT', width: 8, align: 'right', drop: 3, cell: (r) => formatBytes(r.bytesOut) },
  ];
}

export interface SessionsViewProps {
  rows: readonly LiveSession[];
  /** the snapshot's time: durations are the gateway's, not this host's clock */
  at: string;
  width: number;
  maxRows: number;
  selected: number;
  filtered: boolean;
  /** show each session's node (multiNode in rows.ts) */
  nodes: boolean;
}

export function SessionsView(props: SessionsViewProps) {
  const { rows, at, width, maxRows, selected, filtered, nodes } = props;
  return (
    <Table
      columns={columns(at, nodes)}
      rows={rows}
      rowKey={(r) => r.id}
      width={width}
      maxRows={maxRows}
      selected={selected}
      empty={filtered ? 'no open session matches the filter' : 'no open sessions'}
    />
  );
}
