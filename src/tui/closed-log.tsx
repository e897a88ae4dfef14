/**
 * Sessions that ended, printed once above the live region (Ink's <Static>): the terminal's
 * scrollback becomes the session log of this monitor run.
 */
import { Static, Text } from 'ink';
import type { ClosedSession } from '../core/control/protocol.js';
import { formatAge, formatBytes, formatClock } from './format.js';
import type { ClosedBatch } from './use-monitor.js';

export function closedLine(s: ClosedSession): string {
  const who = s.user ?? '(no login)';
  const route = s.route ? ` -> ${s.route}` : '';
  const tls = s.tls ? ' tls' : '';
  return (
    `${formatClock(s.closedAt)} closed ${s.listener || s.protocol} ${who} from ${s.client}` +
    `${route}${tls}, ${formatAge(s.durationMs)}, in ${formatBytes(s.bytesIn)}` +
    ` out ${formatBytes(s.bytesOut)}: ${s.reason}`
  );
}

export function ClosedLog({ closed }: { closed: ClosedBatch }) {
  return (
    <Static key={closed.batch} items={closed.items}>
      {(s) => (
        <Text key={s.id} dimColor>
          {closedLine(s)}
        </Text>
      )}
    </Static>
  );
}
