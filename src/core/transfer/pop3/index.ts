/** POP3 fallback of the copy engine: the source inbox over POP3 into the destination INBOX. */
export {
  pop3Copy,
  type Pop3CopiedInfo,
  type Pop3CopyOptions,
  type Pop3CopyResult,
} from './pop3-copy.js';
export { Pop3Client, Pop3Error, type Pop3ConnectOptions } from './pop3-client.js';
export {
  internalDateOf,
  parseMailDate,
  headerFields,
  headerSection,
  type DateSource,
} from './received-date.js';
