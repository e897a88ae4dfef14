/**
 * Transfers running now: their step (pre-copy while the source serves the account, the
 * locked switch), the folder being copied with a progress bar of its messages,
 * the rate and the folder's ETA.
 */
import type { LiveTransfer } from '../core/control/protocol.js';
import { formatDuration, formatRate, progressBar } from './format.js';
import { nodeColumn, Table, type Column } from './table.js';

export function transferCells(t: LiveTransfer, barWidth: number) {
  const scanning = t.phase === 'scan' || t.folder === undefined;
  return {
    bar: scanning ? '' : progressBar(t.folderCopied, t.folderToCopy, barWidth),
    messages: scanning ? 'scanning' : `${t.folderCopied}/${t.folderToCopy}`,
    rate: formatRate(t.bytesPerSecond),
    eta: t.folderEtaSeconds === undefined ? '--' : formatDuration(t.folderEtaSeconds),
  };
}

/** the switch is the only time the user is locked out: it stands out */
export function stepLabel(t: LiveTransfer): string {
  return t.step === 'switching' ? 'SWITCHING' : 'pre-copy';
}

function columns(width: number, nodes: boolean): Column<LiveTransfer>[] {
  const barWidth = width >= 120 ? 24 : width >= 90 ? 16 : 10;
  return [
    ...(nodes ? [nodeColumn<LiveTransfer>()] : []),
    { title: 'ACCOUNT', width: 16, grow: true, cell: (r) => r.address },
    // kept longest after the account: SWITCHING is the only time the user is locked out
    { title: 'STEP', width: 9, drop: 1, cell: (r) => stepLabel(r) },
    { title: 'FOLDER', width: 14, drop: 4, cell: (r) => r.folder ?? '-' },
    {
      title: 'PROGRESS',
      width: barWidth,
      drop: 3,
      cell: (r) => transferCells(r, barWidth).bar,
    },
    { title: 'MESSAGES', width: 11, align: 'right', cell: (r) => transferCells(r, 0).messages },
    { title: 'RATE', width: 10, align: 'right', drop: 5, cell: (r) => transferCells(r, 0).rate },
    { title: 'ETA', width: 7, align: 'right', drop: 2, cell: (r) => transferCells(r, 0).eta },
    { title: 'DONE', width: 7, align: 'right', drop: 6, cell: (r) => `${r.foldersDone} fld` },
  ];
}

export interface TransfersViewProps {
  rows: readonly LiveTransfer[];
  width: number;
  maxRows: number;
  selected: number;
  filtered: boolean;
  /** show each transfer's node (multiNode in rows.ts) */
  nodes: boolean;
}

export function TransfersView(props: TransfersViewProps) {
  const { rows, width, maxRows, selected, filtered, nodes } = props;
  return (
    <Table
      columns={columns(width, nodes)}
      rows={rows}
      rowKey={(r) => r.address}
      width={width}
      maxRows={maxRows}
      selected={selected}
      empty={filtered ? 'no transfer matches the filter' : 'no transfer running'}
    />
  );
}
