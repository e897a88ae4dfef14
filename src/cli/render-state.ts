/** Plain-text results of `state export` and `state import` (the JSON is the result itself). */
import type { ExportSummary, ImportSummary } from '../core/state-move/index.js';

export function renderExport(r: ExportSummary, file: string): string {
  return (
    `exported ${r.records} account(s), ${r.sideData} side data entries and ${r.sideFiles} side file(s) of ${r.source} ` +
    `to ${file === '-' ? 'standard output' : file} (${r.bytes} bytes, sha256 ${r.digest.slice(0, 16)}...)\n`
  );
}

export function renderImport(r: ImportSummary): string {
  const lines = [
    `imported ${r.records} account(s) into ${r.target}: ${r.written} written, ${r.unchanged} already there`,
    `  side files: ${r.sideFiles} (${r.sideWritten} written, ${r.sideUnchanged} already there); side data: ${r.sideData} (${r.sideDataWritten} written)`,
    `  verified: every record and side file reads back as in the dump (exported from ${r.source} at ${r.exportedAt})`,
  ];
  if (r.rebased) lines.push("  the records' uidMap paths now name the target's side folder");
  return `${lines.join('\n')}\n`;
}
