/** Types shared by the session, its login and its command writer. */
import type { Endpoint } from '../../config/endpoint.js';
import type { Body } from './spill.js';
import type { ReaderLimits, RawResponse, ResponseCode } from './wire.js';

export interface SessionTimeouts {
  connectMs: number;
  greetingMs: number;
  /** longest time a command may go without any bytes moving in either direction */
  commandMs: number;
}

export interface SessionOptions {
  endpoint: Endpoint;
  timeouts: SessionTimeouts;
  /** for messages: "source" or "destination" */
  label: string;
  limits?: ReaderLimits;
}

export interface Credentials {
  user: string;
  password: string;
  /** log in as `user` through a master user (Dovecot: `user*master`, or SASL PLAIN authzid) */
  master?: { user: string; password: string; separator: string };
}

export interface Tagged {
  tag: string;
  status: 'OK' | 'NO' | 'BAD';
  code?: ResponseCode;
  text: string;
}

/** Part of a command: text written as is, or a literal sent with its `{N}` prefix. */
export type CommandPart = string | { literal: Body };

export type UntaggedHandler = (r: RawResponse) => void;

/** A command sent and not yet completed (the greeting waits as one too). */
export interface Pending {
  tag: string;
  onUntagged?: UntaggedHandler;
  resolve: (t: Tagged) => void;
  reject: (e: Error) => void;
}
