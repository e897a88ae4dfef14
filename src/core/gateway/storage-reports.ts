/**
 * What the gateway's log says when writing the state or an event log fails and when it
 * works again. Without these the store and the event logs report through
 * process.emitWarning: unstructured, on stderr, and without the end of the episode.
 */
import type { Logger } from '../log/logger.js';
import type { EventLogOptions } from '../state/event-log.js';
import type { JsonStoreOptions } from '../state/json-store.js';

export function storeReports(
  logger: Logger,
  onFailed: () => void = () => undefined,
): Pick<JsonStoreOptions, 'onSaveError' | 'onSaveRecovered'> {
  return {
    onSaveError: (err) => {
      onFailed();
      logger.error('saving the state failed; retrying', { err });
    },
    onSaveRecovered: ({ failures, since }) =>
      logger.info('saving the state works again', { failures, since }),
  };
}

export function eventLogReports(
  logger: Logger,
  file: string,
): Pick<EventLogOptions, 'onError' | 'onRecovered'> {
  return {
    onError: (err) => logger.error('writing a log file failed; retrying', { file, err }),
    onRecovered: () => logger.info('writing the log file works again', { file }),
  };
}
