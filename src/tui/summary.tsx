/**
 * The summary strip: the gateway (version, pid, uptime), sessions and queue, accounts by
 * state, and per minute the SMTP traffic to source and destination and the logins, each
 * with its trend over the last minutes; with several gateway nodes, each node and its load. Lines are built as text so their width is known;
 * on a narrow terminal the trends get shorter and then go, on a short one it is one line.
 */
import { Box, Text } from 'ink';
import type {
  Hello,
  MinuteCounts,
  MonitorSnapshot,
  NodeSummary,
} from '../core/control/protocol.js';
import type { AccountState } from '../core/state/types.js';
import { formatAge, msBetween, sparkline } from './format.js';
import { multiNode } from './rows.js';
import { useStale } from './stale.js';

/** the order an operator reads them in: done, in progress, waiting, needing attention */
const STATE_ORDER: readonly AccountState[] = [
  'migrated',
  'transferring',
  'captured',
  'failed',
  'excluded',
  'unknown',
];

const MAX_SPARK = 15;

function gatewayLine(hello: Hello, s: MonitorSnapshot | undefined, width: number): string {
  const head = `autoport ${hello.version}  pid ${hello.pid}`;
  if (!s) return `${head}  waiting for the first snapshot...`;
  const up = `up ${formatAge(msBetween(hello.startedAt, s.at))}`;
  const by = Object.entries(s.sessions.byProtocol)
    .map(([p, n]) => `${p} ${n}`)
    .join(', ');
  const long = `${head}  ${up}  sessions ${s.sessions.total} (${by})  queue ${s.queue}`;
  return long.length <= width
    ? long
    : `${head}  ${up}  sessions ${s.sessions.total}  queue ${s.queue}`;
}

function accountsLine(s: MonitorSnapshot): string {
  const total = STATE_ORDER.reduce((sum, st) => sum + (s.accounts[st] ?? 0), 0);
  return `accounts ${total}  ${STATE_ORDER.map((st) => `${st} ${s.accounts[st] ?? 0}`).join('  ')}`;
}

/** the minute-counts line with trends of `n` minutes (0: none) */
function minutesLine(minutes: readonly MinuteCounts[], n: number): string {
  const last = minutes[minutes.length - 1];
  const recent = minutes.slice(-n);
  const item = (label: string, pick: (m: MinuteCounts) => number) => {
    const now = `${label} ${last ? pick(last) : 0}`;
    return n > 0 ? `${now} ${sparkline(recent.map(pick))}` : now;
  };
  const smtp = [
    item('source', (m) => m.smtpToSource),
    item('destination', (m) => m.smtpToDestination),
  ];
  const logins = [item('ok', (m) => m.loginsOk), item('refused', (m) => m.loginsRefused)];
  return `smtp/min  ${smtp.join('  ')}   logins/min  ${logins.join('  ')}`;
}

function fittedMinutesLine(minutes: readonly MinuteCounts[], width: number): string {
  for (let n = Math.min(MAX_SPARK, minutes.length); n >= 3; n--) {
    const line = minutesLine(minutes, n);
    if (line.length <= width) return line;
  }
  return minutesLine(minutes, 0);
}

function nodeItem(n: NodeSummary, at: string, long: boolean): string {
  if (!n.alive) {
    const seen = `seen ${formatAge(msBetween(n.seenAt, at))} ago`;
    return long ? `${n.name} down (${seen})` : `${n.name} down`;
  }
  if (!long) return `${n.name} ${n.sessions}/${n.transfers}`;
  const s = (count: number, what: string) => `${count} ${what}${count === 1 ? '' : 's'}`;
  const moving = n.transfers > 0 ? ` ${s(n.transfers, 'transfer')}` : '';
  return `${n.name}${n.self ? ' (here)' : ''} ${s(n.sessions, 'session')}${moving}`;
}

/** the gateway nodes sharing the state and their load; shorter when it does not fit */
function nodesLine(s: MonitorSnapshot, width: number): string {
  const alive = s.nodes.filter((n) => n.alive).length;
  const head = `nodes ${alive}/${s.nodes.length} alive`;
  const line = (long: boolean) => [head, ...s.nodes.map((n) => nodeItem(n, s.at, long))].join('  ');
  const long = line(true);
  return long.length <= width ? long : `${line(false)}  (sessions/transfers)`;
}

/** one line for a short terminal */
function compactLine(hello: Hello, s: MonitorSnapshot | undefined): string {
  if (!s) return `autoport ${hello.version}  pid ${hello.pid}`;
  const last = s.minutes[s.minutes.length - 1];
  const total = STATE_ORDER.reduce((sum, st) => sum + (s.accounts[st] ?? 0), 0);
  return [
    `up ${formatAge(msBetween(hello.startedAt, s.at))}`,
    `sessions ${s.sessions.total}`,
    `queue ${s.queue}`,
    `migrated ${s.accounts.migrated ?? 0}/${total}`,
    `failed ${s.accounts.failed ?? 0}`,
    `smtp/min ${last?.smtpToSource ?? 0}/${last?.smtpToDestination ?? 0}`,
    ...(multiNode(s) ? [`nodes ${s.nodes.filter((n) => n.alive).length}/${s.nodes.length}`] : []),
  ].join('  ');
}

export function summaryLines(
  hello: Hello | undefined,
  s: MonitorSnapshot | undefined,
  width: number,
  compact: boolean,
): string[] {
  const gw = hello ?? s?.gateway;
  if (!gw) return [];
  if (compact) return [compactLine(gw, s)];
  if (!s) return [gatewayLine(gw, s, width)];
  const lines = [gatewayLine(gw, s, width), accountsLine(s), fittedMinutesLine(s.minutes, width)];
  if (multiNode(s)) lines.push(nodesLine(s, width));
  if (s.nodesError) lines.push(s.nodesError);
  return lines;
}

export interface SummaryProps {
  hello: Hello | undefined;
  snapshot: MonitorSnapshot | undefined;
  width: number;
  compact: boolean;
}

export function Summary({ hello, snapshot, width, compact }: SummaryProps) {
  const stale = useStale();
  const lines = summaryLines(hello, snapshot, width, compact);
  return (
    <Box flexDirection="column">
      {lines.map((line, i) => (
        <Text key={i} bold={i === 0} dimColor={stale} wrap="truncate-end">
          {line}
        </Text>
      ))}
    </Box>
  );
}
