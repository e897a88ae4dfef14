export {
  createLogger,
  silentLogger,
  memorySink,
  type Logger,
  type LoggerOptions,
  type LogLevel,
  type LogFields,
  type LogSink,
} from './logger.js';
export {
  formatHuman,
  formatJson,
  formatLogfmt,
  formatLine,
  type LogFormat,
  type LogRecord,
} from './formats.js';
export { isJournalStream, SD_PRIORITY } from './journal.js';
export { redact, redactString, isSecretKey, REDACTED } from './redact.js';
export { attachSessionLog, type SessionLogOptions } from './session-log.js';
