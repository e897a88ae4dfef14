/**
 * How commands report an error the operator can fix: one cause, one "try", exit 1, no
 * stack trace. Anything that is not an OperatorError is a bug and is rethrown as is.
 */
import { OperatorError } from '../core/errors.js';

export interface Io {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

export const processIo: Io = {
  stdout: (t) => void process.stdout.write(t),
  stderr: (t) => void process.stderr.write(t),
};

export function formatOperatorError(err: OperatorError): string {
  return `error: ${err.message}\n  try: ${err.hint}\n`;
}

/**
 * Print an OperatorError (also as JSON on stdout with --json) and set exit code 1;
 * rethrow anything else.
 */
export function reportCommandError(err: unknown, json: boolean, io: Io = processIo): void {
  if (!(err instanceof OperatorError)) throw err;
  if (json) io.stdout(`${JSON.stringify({ ok: false, error: err.toJSON() }, null, 2)}\n`);
  io.stderr(formatOperatorError(err));
  process.exitCode = 1;
}
