/**
 * A tiny plain-text table: columns padded to their widest cell, the last column wrapped to
 * the terminal width with a hanging indent. No colours, no box drawing: it must read the
 * same in tmux, a log file and a ticket.
 */
export interface TableOptions {
  /** a header row, underlined with dashes */
  header?: string[];
  /** spaces before every line */
  indent?: number;
  /** spaces between columns (default 2) */
  gap?: number;
  /** wrap the last column to fit this many characters per line (default: no wrapping) */
  maxWidth?: number;
}

function wrap(text: string, width: number): string[] {
  if (width < 10 || text.length <= width) return [text];
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line === '') line = word;
    else if (line.length + 1 + word.length <= width) line += ` ${word}`;
    else {
      lines.push(line);
      line = word;
    }
    while (line.length > width) {
      lines.push(line.slice(0, width));
      line = line.slice(width);
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
  const all: string[][] = [];
  if (options.header) {
    all.push([...options.header]);
    all.push(options.header.map((h) => '-'.repeat(h.length)));
  }
  for (const r of rows) all.push(r.map((c) => c.replace(/[\r\n\t]+/g, ' ')));
  const columns = Math.max(0, ...all.map((r) => r.length));
  const widths: number[] = [];
  for (let c = 0; c < columns - 1; c++)
    widths.push(Math.max(0, ...all.map((r) => (r[c] ?? '').length)));
  const lead = widths.reduce((sum, w) => sum + w + gap.length, indent.length);
  const lastWidth = options.maxWidth ? options.maxWidth - lead : Infinity;
  const out: string[] = [];
  for (const r of all) {
    const cells = widths.map((w, c) => (r[c] ?? '').padEnd(w));
    const last = r.length === columns ? (r[columns - 1] ?? '') : '';
    const wrapped = Number.isFinite(lastWidth) ? wrap(last, lastWidth) : [last];
    out.push(`${indent}${[...cells, wrapped[0] ?? ''].join(gap)}`.trimEnd());
    for (const more of wrapped.slice(1)) out.push(`${' '.repeat(lead)}${more}`);
  }
  return out.length > 0 ? `${out.join('\n')}\n` : '';
}
