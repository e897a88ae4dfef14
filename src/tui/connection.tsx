/**
 * One line about the link when it is not simply up: connecting, or the gateway gone with
 * the reason and the countdown to the next attempt, and that the numbers below are old.
 */
import { Box, Text } from 'ink';
import { formatClock } from './format.js';
import type { LinkStatus } from './link.js';

export interface ConnectionLineProps {
  status: LinkStatus;
  target: string;
  /** epoch ms, for the countdown */
  now: number;
  /** time of the snapshot still on screen, if any */
  lastSnapshotAt: string | undefined;
}

export function retryInSeconds(retryAt: number, now: number): number {
  return Math.max(0, Math.ceil((retryAt - now) / 1000));
}

export function connectionMessage(status: LinkStatus, target: string, now: number): string {
  switch (status.state) {
    case 'connected':
      return '';
    case 'connecting':
      return status.lastError === undefined
        ? `connecting to the gateway at ${target}...`
        : `gateway not reachable at ${target}: ${status.lastError}; connecting...`;
    case 'lost':
      return `gateway not reachable at ${target}: ${status.reason}; retrying in ${retryInSeconds(status.retryAt, now)}s`;
  }
}

export function ConnectionLine({ status, target, now, lastSnapshotAt }: ConnectionLineProps) {
  if (status.state === 'connected') return null;
  const failing = status.state === 'lost' || status.lastError !== undefined;
  return (
    <Box flexDirection="column">
      <Text color={failing ? 'red' : 'yellow'}>{connectionMessage(status, target, now)}</Text>
      {lastSnapshotAt !== undefined ? (
        <Text dimColor wrap="truncate-end">
          {`stale: last snapshot ${formatClock(lastSnapshotAt)}`}
        </Text>
      ) : null}
    </Box>
  );
}
