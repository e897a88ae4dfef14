/**
 * `autoport monitor`: closed sessions scroll by above (Static); below, redrawn, the link's
 * state, the summary strip, the view tabs, the current view and the key help. Everything
 * comes from a MonitorLink; this file wires keys to the link and sizes the parts to the
 * terminal.
 */
import { Box, useApp, useInput } from 'ink';
import { useCallback, useEffect, useRef, useState } from 'react';
import { ClosedLog } from './closed-log.js';
import { ConnectionLine, connectionMessage } from './connection.js';
import { ErrorsView } from './errors.js';
import { Footer, noticeLines, type Notice } from './footer.js';
import { wrappedLines } from './format.js';
import { initialUi, keyCommand, reduceUi, selectedIndex, type UiState } from './keys.js';
import type { MonitorLink } from './link.js';
import { filterRows, multiNode, viewEntries, type ViewName } from './rows.js';
import { SessionsView } from './sessions.js';
import { StaleContext } from './stale.js';
import { Summary, summaryLines } from './summary.js';
import { Tabs, tabsHeight } from './tabs.js';
import { TransfersView } from './transfers.js';
import { useMonitor, MIN_REDRAW_MS } from './use-monitor.js';
import { useNow, useTerminalSize } from './use-terminal.js';

/** below this many rows the summary strip is one line */
const COMPACT_ROWS = 18;

export interface AppProps {
  link: MonitorLink;
  /** epoch ms; tests pass a fixed one so countdowns are exact */
  clock?: () => number;
  /** called when the user quits, before Ink unmounts */
  onQuit?: () => void;
  minRedrawMs?: number;
}

export function App({ link, clock = Date.now, onQuit, minRedrawMs = MIN_REDRAW_MS }: AppProps) {
  const { exit } = useApp();
  const { columns, rows } = useTerminalSize();
  const { status, snapshot, closed } = useMonitor(link, minRedrawMs);
  const [ui, setUi] = useState<UiState>(initialUi);
  const [notice, setNotice] = useState<Notice>();
  const now = useNow(clock, status.state === 'lost');
  const mounted = useRef(true);
  useEffect(
    () => () => {
      mounted.current = false;
    },
    [],
  );

  const lists = filterRows(snapshot, ui.filter);
  const entries = viewEntries(ui.view, lists);
  const keys = entries.map((e) => e.key);
  const selected = selectedIndex(ui, keys);

  const startTransfer = useCallback(
    (address: string) => {
      setNotice({ tone: 'info', text: `asking the gateway to move ${address} now...` });
      void link.startTransfer(address).then((outcome) => {
        if (!mounted.current) return;
        setNotice(
          outcome.ok
            ? { tone: 'ok', text: `${address}: ${outcome.message}` }
            : { tone: 'error', text: `${address}: ${outcome.message}`, hint: outcome.hint },
        );
      });
    },
    [link],
  );

  // Ink re-binds this handler only after the frame is drawn; keys typed faster than that
  // must still see the state they were typed on, so it reads the latest render's values.
  const latest = useRef({ ui, keys, entries });
  latest.current = { ui, keys, entries };
  useInput((input, key) => {
    const cur = latest.current;
    const command = keyCommand(cur.ui, input, key, cur.keys);
    if (!command) return;
    if (command.type === 'quit') {
      onQuit?.();
      exit();
      return;
    }
    if (command.type === 'start-transfer') {
      const at = selectedIndex(cur.ui, cur.keys);
      const account = cur.entries[at]?.account;
      if (at < 0) setNotice({ tone: 'info', text: 'select a row first (up/down or j/k)' });
      else if (account === undefined)
        setNotice({ tone: 'info', text: 'this row has no account to move' });
      else startTransfer(account);
      return;
    }
    if (command.type === 'view' || command.type === 'cycle') setNotice(undefined);
    const next = reduceUi(cur.ui, command);
    latest.current = { ...cur, ui: next };
    setUi(next);
  });

  const stale = status.state !== 'connected' && snapshot !== undefined;
  const hello = status.state === 'connected' ? status.hello : snapshot?.gateway;
  const compact = rows < COMPACT_ROWS;
  const counts: Record<ViewName, number> = {
    sessions: lists.sessions.length,
    transfers: lists.transfers.length,
    errors: lists.errors.length,
  };
  const tabs = { view: ui.view, counts, filter: ui.filter, editing: ui.editing, width: columns };
  const message = connectionMessage(status, link.target, now);
  const used =
    (message === '' ? 0 : wrappedLines(message, columns) + (stale ? 1 : 0)) +
    summaryLines(hello, snapshot, columns, compact).length +
    tabsHeight(tabs) +
    1 + // table header
    noticeLines(notice).length +
    1 + // key help
    1; // Ink redraws in place only while the live region is shorter than the terminal
  const maxRows = Math.max(1, rows - used);
  const filtered = ui.filter !== '';
  const table = { width: columns, maxRows, selected, filtered, nodes: multiNode(snapshot) };

  return (
    <>
      <ClosedLog closed={closed} />
      <StaleContext.Provider value={stale}>
        <Box flexDirection="column" width={columns}>
          <ConnectionLine
            status={status}
            target={link.target}
            now={now}
            lastSnapshotAt={stale ? snapshot?.at : undefined}
          />
          <Summary hello={hello} snapshot={snapshot} width={columns} compact={compact} />
          <Tabs {...tabs} />
          {ui.view === 'sessions' ? (
            <SessionsView
              rows={lists.sessions}
              at={snapshot?.at ?? new Date(clock()).toISOString()}
              {...table}
            />
          ) : ui.view === 'transfers' ? (
            <TransfersView rows={lists.transfers} {...table} />
          ) : (
            <ErrorsView rows={lists.errors} {...table} />
          )}
          <Footer notice={notice} width={columns} editing={ui.editing} />
        </Box>
      </StaleContext.Provider>
    </>
  );
}
