/**
 * The one table of the monitor: fixed columns that fit the terminal (on a narrow one the
 * least useful columns go first), at most `maxRows` lines with the selected row kept in
 * view, and "+N more" for the rest.
 */
import { Box, Text } from 'ink';
import { useStale } from './stale.js';
import { pad } from '../cli/text.js';
import { fit } from './format.js';

export interface Column<Row> {
  title: string;
  /** width in characters; a `grow` column takes what is left, but never less than this */
  width: number;
  grow?: boolean;
  align?: 'left' | 'right';
  /** 0: always shown; otherwise higher numbers are dropped first when space runs out */
  drop?: number;
  cell(row: Row): string;
}

/** the NODE column of sessions and transfers, shown when several gateway nodes share the state */
export function nodeColumn<Row extends { node: string }>(): Column<Row> {
  return { title: 'NODE', width: 8, drop: 2, cell: (r) => r.node };
}

const GAP = 2;
/** the selection marker's column */
const GUTTER = 2;

/** the columns that fit in `available` characters, each with its final width */
export function layoutColumns<Row>(
  columns: readonly Column<Row>[],
  available: number,
): { column: Column<Row>; width: number }[] {
  let kept = [...columns];
  const total = (cs: readonly Column<Row>[]) =>
    cs.reduce((sum, c) => sum + c.width, 0) + GAP * Math.max(0, cs.length - 1);
  while (total(kept) > available) {
    const droppable = kept.filter((c) => (c.drop ?? 0) > 0);
    if (droppable.length === 0) break;
    const worst = droppable.reduce((a, b) => ((b.drop ?? 0) >= (a.drop ?? 0) ? b : a));
    kept = kept.filter((c) => c !== worst);
  }
  const spare = Math.max(0, available - total(kept));
  const growers = kept.filter((c) => c.grow);
  const each = growers.length > 0 ? Math.floor(spare / growers.length) : 0;
  const last = growers[growers.length - 1];
  return kept.map((column) => {
    if (!column.grow) return { column, width: column.width };
    const extra = column === last ? spare - each * (growers.length - 1) : each;
    return { column, width: column.width + extra };
  });
}

/** the first row to show so that `selected` is within `maxRows` lines */
export function windowStart(count: number, selected: number, maxRows: number): number {
  if (count <= maxRows) return 0;
  const start = selected - Math.floor(maxRows / 2);
  return Math.max(0, Math.min(start, count - maxRows));
}

export function formatRow<Row>(
  layout: readonly { column: Column<Row>; width: number }[],
  cells: readonly string[],
): string {
  return layout
    .map(({ column, width }, i) => {
      return pad(fit(cells[i] ?? '', width), width, column.align);
    })
    .join(' '.repeat(GAP))
    .trimEnd();
}

export interface TableProps<Row> {
  columns: readonly Column<Row>[];
  rows: readonly Row[];
  rowKey(row: Row): string;
  width: number;
  /** lines available for rows, "+N more" included */
  maxRows: number;
  /** index into rows, or -1 for none */
  selected: number;
  /** shown instead of the rows when there are none */
  empty: string;
}

export function Table<Row>(props: TableProps<Row>) {
  const { columns, rows, rowKey, width, selected, empty } = props;
  const stale = useStale();
  const layout = layoutColumns(columns, width - GUTTER);
  const header = formatRow(
    layout,
    layout.map(({ column }) => column.title),
  );
  const room = Math.max(1, props.maxRows);
  const lines = rows.length > room ? Math.max(1, room - 1) : room;
  const start = windowStart(rows.length, Math.max(0, selected), lines);
  const shown = rows.slice(start, start + lines);
  const hidden = rows.length - shown.length;
  return (
    <Box flexDirection="column">
      <Text bold dimColor={stale}>
        {`${' '.repeat(GUTTER)}${header}`}
      </Text>
      {rows.length === 0 ? <Text dimColor>{`${' '.repeat(GUTTER)}${empty}`}</Text> : null}
      {shown.map((row, i) => {
        const line = formatRow(
          layout,
          layout.map(({ column }) => column.cell(row)),
        );
        const isSelected = start + i === selected;
        return (
          <Text key={rowKey(row)} inverse={isSelected} dimColor={stale} wrap="truncate">
            {`${isSelected ? '> ' : '  '}${line}`}
          </Text>
        );
      })}
      {hidden > 0 ? <Text dimColor>{`+${hidden} more`}</Text> : null}
    </Box>
  );
}
