/**
 * What a report hands its renderers: one typed result, and a view that turns it into
 * tables (for a terminal) and one flat table (for CSV). The table and the CSV are built
 * from the same rows, so the renderings never disagree; drawing them is src/cli's job.
 */
export type Cell = string | number | boolean | null | undefined;

export interface ReportTable {
  /** shown above the table on a terminal; not part of the CSV */
  title?: string;
  header: string[];
  rows: Cell[][];
}

/** How one report's result becomes tables (terminal) and one flat table (CSV). */
export interface ReportView<R> {
  tables(result: R): ReportTable[];
  csv(result: R): ReportTable;
  /** lines after the tables on a terminal (totals, notes) */
  footer?(result: R): string[];
}
