export {
  createLogger,
  silentLogger,
  memorySink,
  formatHuman,
  type Logger,
  type LoggerOptions,
  type LogLevel,
  type LogFields,
  type LogSink,
} from './logger.js';
export { redact, redactString, isSecretKey, REDACTED } from './redact.js';
export { attachSessionLog, type SessionLogOptions } from './session-log.js';
