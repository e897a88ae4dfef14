/**
 * The one way the CLI draws a table: columns padded to their widest cell, measured in
 * terminal cells (CJK and emoji take two, colour codes none), a column with a maximum cut
 * with an ellipsis, the last column wrapped to the terminal width with a hanging indent.
 * No box drawing: it must read the same in tmux, a log file and a ticket.
 */
import { displayWidth, oneLine, pad, splitAtWidth, truncate } from './text.js';

export interface ColumnOptions {
  /** at most this many cells; longer cells are cut with an ellipsis */
  max?: number;
  align?: 'left' | 'right';
}

export interface TableOptions {
  /** a header row, underlined with dashes */
  header?: string[];
  /** how the header's words are drawn (bold on a colour terminal); default as they are */
  headerStyle?: (text: string) => string;
  /** per column, by position */
  columns?: readonly (ColumnOptions | undefined)[];
  /** spaces before every line */
  indent?: number;
  /** spaces between columns (default 2) */
  gap?: number;
  /** wrap the last column to fit this many cells per line (default: no wrapping) */
  maxWidth?: number;
}

function wrap(text: string, width: number): string[] {
  if (width < 10 || displayWidth(text) <= width) return [text];
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line === '') line = word;
    else if (displayWidth(line) + 1 + displayWidth(word) <= width) line += ` ${word}`;
    else {
      lines.push(line);
      line = word;
    }
    while (displayWidth(line) > width) {
      const [head, rest] = splitAtWidth(line, width);
      lines.push(head);
      line = rest;
    }
  }
  if (line !== '') lines.push(line);
  return lines.length > 0 ? lines : [''];
}

export function renderTable(
  rows: readonly (readonly string[])[],
  options: TableOptions = {},
): string {
  const gap = ' '.repeat(options.gap ?? 2);
  const indent = ' '.repeat(options.indent ?? 0);
  const style = options.headerStyle ?? ((t: string) => t);
  const fitted = (r: readonly string[]): string[] =>
    r.map((c, i) => {
      const max = options.columns?.[i]?.max;
      const text = oneLine(c);
      return max === undefined ? text : truncate(text, max);
    });
  const all: string[][] = [];
  if (options.header) {
    const header = fitted(options.header);
    all.push(header.map(style));
    all.push(header.map((h) => '-'.repeat(displayWidth(h))));
  }
  for (const r of rows) all.push(fitted(r));
  const columns = Math.max(0, ...all.map((r) => r.length));
  const widths: number[] = [];
  for (let c = 0; c < columns - 1; c++)
    widths.push(Math.max(0, ...all.map((r) => displayWidth(r[c] ?? ''))));
  const lead = widths.reduce((sum, w) => sum + w + gap.length, indent.length);
  const lastWidth = options.maxWidth ? options.maxWidth - lead : Infinity;
  const out: string[] = [];
  for (const r of all) {
    const cells = widths.map((w, c) => pad(r[c] ?? '', w, options.columns?.[c]?.align));
    const last = r.length === columns ? (r[columns - 1] ?? '') : '';
    const wrapped = Number.isFinite(lastWidth) ? wrap(last, lastWidth) : [last];
    out.push(`${indent}${[...cells, wrapped[0] ?? ''].join(gap)}`.trimEnd());
    for (const more of wrapped.slice(1)) out.push(`${' '.repeat(lead)}${more}`);
  }
  return out.length > 0 ? `${out.join('\n')}\n` : '';
}
