/** Account administration over a StateStore (commands open the store and call these). */
export * from './open.js';
export * from './query.js';
export * from './change.js';
export * from './import.js';
