/** The outcome of the last action (a transfer started, or why not) and the key help. */
import { Box, Text } from 'ink';

export type Notice =
  { tone: 'info' | 'ok'; text: string } | { tone: 'error'; text: string; hint?: string };

export function noticeLines(notice: Notice | undefined): string[] {
  if (!notice) return [];
  if (notice.tone !== 'error' || notice.hint === undefined) return [notice.text];
  return [notice.text, `  try: ${notice.hint}`];
}

export function keyHelp(width: number, editing: boolean): string {
  if (editing) return 'type to filter by account or client  Enter keep  Esc clear';
  if (width >= 90)
    return '1-3/Tab views  / filter  up/down j/k select  r/Enter move the account now  q quit';
  return '1-3 Tab  / filter  j/k  r move  q quit';
}

export function Footer({
  notice,
  width,
  editing,
}: {
  notice: Notice | undefined;
  width: number;
  editing: boolean;
}) {
  const color = notice?.tone === 'error' ? 'red' : notice?.tone === 'ok' ? 'green' : undefined;
  return (
    <Box flexDirection="column">
      {noticeLines(notice).map((line, i) => (
        <Text key={i} color={color} wrap="truncate-end">
          {line}
        </Text>
      ))}
      <Text dimColor wrap="truncate-end">
        {keyHelp(width, editing)}
      </Text>
    </Box>
  );
}
