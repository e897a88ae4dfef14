// The real-server test harness: Dovecot and Postfix on free loopback ports in temp dirs,
// test corpora, and the migration lab built from them. See each module for details.
export * from './ports.js';
export * from './tmp.js';
export * from './os-packages.js';
export * from './tls.js';
export * from './process.js';
export * from './dovecot.js';
export { layoutNamespace, SPECIAL_USE_MAILBOXES } from './dovecot-conf.js';
export * from './postfix.js';
export * from './imap-client.js';
export * from './message.js';
export * from './corpus.js';
export * from './corpus-bulk.js';
export * from './lab.js';
