/**
 * The monitor as text, once: the same summary and tables as the live screen, every row,
 * for a pipe, a log or a ticket (`autoport monitor --once`, or stdout not a terminal).
 */
import { Box, renderToString, Text } from 'ink';
import type { MonitorSnapshot } from '../core/control/protocol.js';
import { closedLine } from './closed-log.js';
import { multiNode } from './rows.js';
import { ErrorsView } from './errors.js';
import { SessionsView } from './sessions.js';
import { Summary } from './summary.js';
import { TransfersView } from './transfers.js';

/** closed sessions listed at the end */
const CLOSED_LINES = 10;

function Section({ title, children }: { title: string; children: React.ReactNode }) {
  return (
    <Box flexDirection="column" marginTop={1}>
      <Text bold>{title}</Text>
      {children}
    </Box>
  );
}

export function SnapshotReport({
  snapshot: s,
  width,
}: {
  snapshot: MonitorSnapshot;
  width: number;
}) {
  const all = { width, selected: -1, filtered: false, nodes: multiNode(s) };
  const closed = s.closed.slice(0, CLOSED_LINES);
  return (
    <Box flexDirection="column" width={width}>
      <Summary hello={s.gateway} snapshot={s} width={width} compact={false} />
      <Section title={`sessions (${s.sessions.total} open)`}>
        <SessionsView rows={s.sessions.list} at={s.at} maxRows={s.sessions.list.length} {...all} />
      </Section>
      <Section title={`transfers (${s.transfers.length} running)`}>
        <TransfersView rows={s.transfers} maxRows={s.transfers.length} {...all} />
      </Section>
      <Section title={`recent errors (${s.errors.length})`}>
        <ErrorsView rows={s.errors} maxRows={s.errors.length} {...all} />
      </Section>
      {closed.length > 0 ? (
        <Section title={`last ${closed.length} closed sessions`}>
          {closed.map((c) => (
            <Text key={c.id}>{`  ${closedLine(c)}`}</Text>
          ))}
        </Section>
      ) : null}
    </Box>
  );
}

export function renderSnapshotText(snapshot: MonitorSnapshot, width: number): string {
  return `${renderToString(<SnapshotReport snapshot={snapshot} width={width} />, { columns: width })}\n`;
}
