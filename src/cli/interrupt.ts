/**
 * Ctrl-C (SIGINT) and SIGTERM during a long command: abort its signal with an operator
 * error that says how to go on, instead of Node's default exit mid-write. The work stops
 * at its next safe point and the command reports the error as usual.
 */
import { OperatorError } from '../core/errors.js';

/** Run `work` with a signal that SIGINT/SIGTERM aborts; the handlers go when it ends. */
export async function withInterrupt<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const abort = new AbortController();
  const onSignal = (): void =>
    abort.abort(
      new OperatorError(
        'interrupted',
        'run the same command again: it resumes where it stopped',
        'EINTERRUPTED',
      ),
    );
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
  try {
    return await work(abort.signal);
  } finally {
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
  }
}
