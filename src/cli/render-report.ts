/**
 * One typed report result, three renderings: a plain table for a terminal, JSON (the
 * result object itself) and CSV, all from the rows the report's view hands out.
 */
import type { Cell, ReportTable, ReportView } from '../core/reports/view.js';
import { plain, type Style } from './style.js';
import { renderTable } from './table.js';

export type ReportFormat = 'table' | 'json' | 'csv';

export function cellText(c: Cell): string {
  if (c === null || c === undefined) return '';
  if (typeof c === 'number') return Number.isInteger(c) ? String(c) : c.toFixed(2);
  return String(c);
}

/**
 * RFC 4180 section 2: records end in CRLF; a field holding a comma, a double quote, CR or
 * LF is enclosed in double quotes, and a double quote inside it is doubled. Everything
 * else goes out as is, so numbers stay numbers for a spreadsheet.
 *
 * Text that a spreadsheet would run as a formula (it starts with = + - @, a tab or CR:
 * OWASP "CSV injection") gets a leading apostrophe. Report cells carry addresses and
 * headers that strangers choose, such as an envelope sender; numbers are never touched.
 */
export function csvField(c: Cell): string {
  let s = typeof c === 'number' ? String(c) : cellText(c);
  if (typeof c === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function toCsv(table: ReportTable): string {
  const lines = [table.header, ...table.rows].map((r) => r.map(csvField).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

export function toText<R>(
  result: R,
  view: ReportView<R>,
  width?: number,
  style: Style = plain,
): string {
  const parts: string[] = [];
  for (const t of view.tables(result)) {
    const head = t.title ? `${style.header(t.title)}\n` : '';
    const body =
      t.rows.length > 0
        ? renderTable(
            t.rows.map((r) => r.map(cellText)),
            { header: t.header, headerStyle: style.header, ...(width ? { maxWidth: width } : {}) },
          )
        : '(none)\n';
    parts.push(head + body);
  }
  const footer = view.footer?.(result) ?? [];
  if (footer.length > 0) parts.push(`${footer.join('\n')}\n`);
  return parts.join('\n');
}

export function formatReport<R>(
  result: R,
  view: ReportView<R>,
  format: ReportFormat,
  width?: number,
  style: Style = plain,
): string {
  if (format === 'json') return `${JSON.stringify(result, null, 2)}\n`;
  if (format === 'csv') return toCsv(view.csv(result));
  return toText(result, view, width, style);
}
