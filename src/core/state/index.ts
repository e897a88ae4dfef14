/** The state layer's public surface: import from here, not from the modules. */
export * from './types.js';
export * from './errors.js';
export {
  openJsonStore,
  type JsonStore,
  type JsonStoreOptions,
  type StoreStatus,
} from './json-store.js';
export { openStateStore, isStateUrl, type StateSettings } from './open-store.js';
export { normalizeAddress } from './records.js';
export { StoreFileAdapter, emptyStoreData, STORE_VERSION, type StoreData } from './store-file.js';
export { MAX_JSON_ACCOUNTS } from './store-limits.js';
export {
  sideFilePath,
  resolveSideFile,
  writeSideFile,
  readSideFile,
  removeSideFiles,
  type SidePath,
} from './side-files.js';
export {
  acquireLock,
  lockPathFor,
  type LockInfo,
  type StoreLock,
  type LockOptions,
} from './lock.js';
export {
  openEventLog,
  readEventLog,
  eventLogFiles,
  type EventLogOptions,
  type ReadEventLogOptions,
} from './event-log.js';
export {
  generateKeyFile,
  loadKeyring,
  rotateKeyFile,
  seal,
  open,
  openText,
  open as openSealed,
  openText as openSealedText,
  resealAll,
  type Keyring,
  type ResealResult,
} from './crypto.js';
export { writeFileAtomic, type AtomicWriteOptions } from './atomic-file.js';
