/**
 * A socket-shaped EventEmitter for unit tests of the backend readers: tests emit 'data',
 * 'end' and 'error' themselves; writes are accepted and dropped.
 */
import { EventEmitter } from 'node:events';

export class StandInSocket extends EventEmitter {
  destroyed = false;
  write(): boolean {
    return true;
  }
  pause(): this {
    return this;
  }
  resume(): this {
    return this;
  }
  destroy(): this {
    this.destroyed = true;
    return this;
  }
}
