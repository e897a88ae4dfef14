/**
 * A small structured logger: one JSON object per line when the output is not a terminal
 * (systemd's journal, files, pipes), a readable line on a TTY, logfmt on request
 * (formats.ts). Everything passes redact() first, so no call site can leak a password by
 * mistake. On the journal every line starts with its syslog priority (journal.ts).
 */
import { formatLine, type LogFields, type LogFormat, type LogLevel } from './formats.js';
import { isJournalStream, SD_PRIORITY, sinkFd } from './journal.js';
import { redact } from './redact.js';

export type { LogFields, LogLevel } from './formats.js';

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface LogSink {
  write(line: string): unknown;
}

/** Sinks that already have our 'error' listener (several loggers may share stdout). */
const guarded = new WeakSet<object>();

/**
 * A stream sink reports a failed write (ENOSPC, EIO, EROFS when stdout is a file on the
 * state disk) as an 'error' event, not by throwing, and an 'error' event nobody listens to
 * kills the process. Losing log lines is better than losing every session: swallow it. A
 * file-backed stdout (SyncWriteStream) keeps writing once the disk has room again. stderr
 * is guarded too: process.emitWarning (the default reporter of the store and the event
 * logs) writes there.
 */
function guardSink(sink: LogSink): void {
  const s = sink as LogSink & { on?: (event: string, fn: (err: Error) => void) => unknown };
  if (typeof s.on !== 'function' || guarded.has(s)) return;
  guarded.add(s);
  s.on('error', () => undefined);
}

export interface LoggerOptions {
  sink?: LogSink;
  /** 'auto': human on a TTY sink, JSON otherwise (the journal included) */
  format?: LogFormat | 'auto';
  level?: LogLevel;
  /** start each line with its sd-daemon priority; default: when the sink is the journal */
  priorityPrefix?: boolean;
  now?: () => Date;
}

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** a logger that adds `fields` to every line (e.g. the session id) */
  child(fields: LogFields): Logger;
  enabled(level: LogLevel): boolean;
}

export function createLogger(options: LoggerOptions = {}, base: LogFields = {}): Logger {
  const sink = options.sink ?? process.stderr;
  guardSink(sink);
  guardSink(process.stderr);
  const isTty = (sink as { isTTY?: boolean }).isTTY === true;
  const format =
    options.format === undefined || options.format === 'auto'
      ? isTty
        ? 'human'
        : 'json'
      : options.format;
  const prefix = options.priorityPrefix ?? isJournalStream(sinkFd(sink));
  const min = ORDER[options.level ?? 'info'];
  const now = options.now ?? (() => new Date());

  const make = (bound: LogFields): Logger => {
    const log = (level: LogLevel, msg: string, fields?: LogFields): void => {
      if (ORDER[level] < min) return;
      const time = now().toISOString();
      const safe = redact({ ...bound, ...fields }) as LogFields;
      const safeMsg = redact(msg) as string;
      const body = formatLine(format, { level, time, msg: safeMsg, fields: safe });
      const line = prefix ? `${SD_PRIORITY[level]}${body}` : body;
      try {
        sink.write(line);
      } catch {
        // A log that cannot be written must not take a session down.
      }
    };
    return {
      debug: (m, f) => log('debug', m, f),
      info: (m, f) => log('info', m, f),
      warn: (m, f) => log('warn', m, f),
      error: (m, f) => log('error', m, f),
      child: (fields) => make({ ...bound, ...fields }),
      enabled: (level) => ORDER[level] >= min,
    };
  };
  return make(base);
}

/** A logger that drops everything (tests that do not look at logs). */
export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => silentLogger,
  enabled: () => false,
};

/** A sink that keeps lines in memory (tests search it for canaries). */
export function memorySink(): LogSink & { lines: string[]; text(): string } {
  const lines: string[] = [];
  return { lines, write: (l: string) => lines.push(l), text: () => lines.join('') };
}
