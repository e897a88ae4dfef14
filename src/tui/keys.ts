/**
 * The monitor's keys as data: what a key press means (keyCommand) and how the screen state
 * changes (reduceUi), both pure, so the App only wires them to Ink and the link.
 *
 *   1 2 3, Tab, Shift-Tab   views          / filter (Enter keeps it, Esc clears it)
 *   up/down, j/k            select a row   r or Enter: move the selected account now
 *   q, Ctrl-C               quit
 */
import type { Key } from 'ink';
import { VIEWS, type ViewName } from './rows.js';

export interface UiState {
  view: ViewName;
  filter: string;
  /** typing goes into the filter */
  editing: boolean;
  /** per view: the selected row's key, and its index to fall back on when it is gone */
  selected: Record<ViewName, { key: string; index: number } | undefined>;
}

export const initialUi: UiState = {
  view: 'sessions',
  filter: '',
  editing: false,
  selected: { sessions: undefined, transfers: undefined, errors: undefined },
};

export type UiAction =
  | { type: 'view'; view: ViewName }
  | { type: 'cycle'; step: 1 | -1 }
  | { type: 'filter-edit' }
  | { type: 'filter-type'; text: string }
  | { type: 'filter-erase' }
  | { type: 'filter-keep' }
  | { type: 'filter-clear' }
  | { type: 'move'; by: number; keys: readonly string[] };

export type KeyCommand = UiAction | { type: 'start-transfer' } | { type: 'quit' };

/** the selected row's index in `keys`, or -1 */
export function selectedIndex(state: UiState, keys: readonly string[]): number {
  const sel = state.selected[state.view];
  if (!sel || keys.length === 0) return -1;
  const at = keys.indexOf(sel.key);
  return at >= 0 ? at : Math.min(sel.index, keys.length - 1);
}

export function keyCommand(
  state: UiState,
  input: string,
  key: Key,
  keys: readonly string[],
): KeyCommand | undefined {
  if (key.ctrl && input === 'c') return { type: 'quit' };
  if (state.editing) {
    if (key.escape) return { type: 'filter-clear' };
    if (key.return) return { type: 'filter-keep' };
    // terminals send DEL (0x7f) for Backspace, which Ink names "delete"
    if (key.backspace || key.delete) return { type: 'filter-erase' };
    if (key.upArrow || key.downArrow) return { type: 'move', by: key.upArrow ? -1 : 1, keys };
    if (input !== '' && !key.ctrl && !key.meta && !key.tab) {
      return { type: 'filter-type', text: input };
    }
    return undefined;
  }
  if (key.tab) return { type: 'cycle', step: key.shift ? -1 : 1 };
  if (key.escape) return state.filter !== '' ? { type: 'filter-clear' } : undefined;
  if (key.upArrow || input === 'k') return { type: 'move', by: -1, keys };
  if (key.downArrow || input === 'j') return { type: 'move', by: 1, keys };
  if (key.return || input === 'r') return { type: 'start-transfer' };
  const view = VIEWS[Number(input) - 1];
  if (/^[1-9]$/.test(input) && view) return { type: 'view', view };
  if (input === '/') return { type: 'filter-edit' };
  if (input === 'q') return { type: 'quit' };
  return undefined;
}

export function reduceUi(state: UiState, action: UiAction): UiState {
  switch (action.type) {
    case 'view':
      return { ...state, view: action.view };
    case 'cycle': {
      const at = VIEWS.indexOf(state.view);
      const next = VIEWS[(at + action.step + VIEWS.length) % VIEWS.length] ?? 'sessions';
      return { ...state, view: next };
    }
    case 'filter-edit':
      return { ...state, editing: true };
    case 'filter-type':
      // a paste arrives as one input; keep it on one line
      return { ...state, filter: state.filter + action.text.replace(/[\r\n\t]/g, '') };
    case 'filter-erase':
      return { ...state, filter: state.filter.slice(0, -1) };
    case 'filter-keep':
      return { ...state, editing: false };
    case 'filter-clear':
      return { ...state, filter: '', editing: false };
    case 'move': {
      const { keys } = action;
      if (keys.length === 0) return state;
      const current = selectedIndex(state, keys);
      const index =
        current < 0
          ? action.by > 0
            ? 0
            : keys.length - 1
          : Math.max(0, Math.min(keys.length - 1, current + action.by));
      const key = keys[index] as string;
      return { ...state, selected: { ...state.selected, [state.view]: { key, index } } };
    }
  }
}
