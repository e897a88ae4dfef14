import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

/** A node id unique to this process: the name, the pid and a random tail (a restart is a new node). */
export function makeNodeId(name: string = hostname()): string {
  return `${name}:${process.pid}:${randomBytes(3).toString('hex')}`;
}
