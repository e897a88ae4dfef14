/**
 * What `migrate --dry-run` and `check --user` report, whatever protocol the source is read
 * with: dry-run.ts fills it for an IMAP source, pop3/dry-run.ts for a POP3 one. Both import
 * it from here, so neither imports the other's module for its types.
 */

export interface DryRunFolder {
  source: string;
  destination: string;
  noselect: boolean;
  specialUse?: string;
  existsOnDestination: boolean;
  messages: number;
  bytes: number;
  /** messages already copied according to the checkpoint (0 on a first run) */
  alreadyCopied: number;
  /** messages the destination will refuse for their size */
  overLimit: number;
  problems: string[];
}

export interface DryRunRate {
  messagesPerSecond: number;
  bytesPerSecond: number;
}

export interface DryRunResult {
  address: string;
  folders: DryRunFolder[];
  skippedFolders: Array<{ source: string; reason: string }>;
  totals: { folders: number; messages: number; bytes: number; toCopy: number; toCopyBytes: number };
  appendLimit?: number;
  /** seconds, at the given rate */
  etaSeconds: number;
  assumedRate: DryRunRate;
  problems: string[];
}

/** The rate an estimate assumes when none is given: a conservative 400 msg/s and 25 MB/s. */
export const DEFAULT_RATE: DryRunRate = {
  messagesPerSecond: 400,
  bytesPerSecond: 25 * 1024 * 1024,
};

/** Seconds to copy this much at this rate: whichever of messages or bytes takes longer. */
export function etaSeconds(toCopy: number, toCopyBytes: number, rate: DryRunRate): number {
  return Math.ceil(Math.max(toCopy / rate.messagesPerSecond, toCopyBytes / rate.bytesPerSecond));
}

export function overLimitProblem(overLimit: number, appendLimit: number | undefined): string {
  return `${overLimit} message(s) over the destination's APPENDLIMIT of ${appendLimit} bytes`;
}
