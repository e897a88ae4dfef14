/**
 * Is this output systemd's journal? systemd sets JOURNAL_STREAM=<device>:<inode> for a
 * service whose stdout or stderr is connected to the journal, and says to compare it with
 * fstat() of the descriptor one writes to: a child whose output was redirected inherits the
 * variable but not the stream (systemd.exec(5), "Environment variables in spawned
 * processes").
 *
 * When it is, each line starts with its sd-daemon priority (sd-daemon(3)): journald strips
 * it and sets PRIORITY, so `journalctl -p warning` finds warnings and errors.
 */
import { fstatSync } from 'node:fs';
import type { LogLevel } from './formats.js';

/** syslog priorities (RFC 5424 6.2.1) as sd-daemon(3) prefixes */
export const SD_PRIORITY: Record<LogLevel, string> = {
  error: '<3>',
  warn: '<4>',
  info: '<6>',
  debug: '<7>',
};

export function isJournalStream(
  fd: number | undefined,
  env: NodeJS.ProcessEnv = process.env,
  stat: (fd: number) => { dev: bigint; ino: bigint } = (n) => fstatSync(n, { bigint: true }),
): boolean {
  const m = /^(\d+):(\d+)$/.exec(env.JOURNAL_STREAM ?? '');
  if (!m?.[1] || !m[2] || fd === undefined) return false;
  try {
    const st = stat(fd);
    // bigint: inode numbers may pass 2^53
    return st.dev === BigInt(m[1]) && st.ino === BigInt(m[2]);
  } catch {
    return false;
  }
}

/** The descriptor behind a sink, when it is a process stream or a file stream. */
export function sinkFd(sink: unknown): number | undefined {
  const fd = (sink as { fd?: unknown } | null)?.fd;
  return typeof fd === 'number' ? fd : undefined;
}
