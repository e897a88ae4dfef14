/** Moving a state between stores (`autoport state export|import`): the public face. */
export {
  exportState,
  exportStateToFile,
  type ExportSummary,
  type ExportOptions,
} from './export.js';
export { importState, type ImportOptions, type ImportSummary } from './import.js';
export { readDump, DumpError, type CheckedDump } from './reader.js';
export { withExportStore, withImportStore } from './open.js';
export { spoolToFile, type Spooled } from './spool.js';
export { DUMP_FORMAT, DUMP_VERSION } from './dump-format.js';
