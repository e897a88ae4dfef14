/**
 * Containment of the SMTP handlers: smtp-server calls them from socket callbacks, where a
 * throw would be an uncaught exception for the whole process. A bug met while handling
 * one connection ends that connection with 421 (RFC 5321 3.8; smtp-server closes after any
 * 421), so no other session and no later command of this one meets the broken state.
 */
import type { SMTPServerSession } from 'smtp-server';
import type { SessionEvent } from '../bus.js';
import type { Logger } from '../log/logger.js';
import { smtpSpec } from '../replies.js';
import { SmtpReplyError } from './reply-error.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- smtp-server's callbacks differ in their result
export type Callback = (err?: Error | null, ...rest: any[]) => void;

/** a callback that only its first call reaches: a handler that answered and then threw */
function once<C extends Callback>(cb: C): C {
  let called = false;
  return ((...args: Parameters<C>) => {
    if (called) return;
    called = true;
    cb(...args);
  }) as C;
}

function faultReply(): SmtpReplyError {
  return new SmtpReplyError(421, `4.3.0 ${smtpSpec('internal-error').text}`);
}

/** the end of a connection whose onConnect met a bug: no session, still a fault to count */
export function faultBeforeSession(s: SMTPServerSession): SessionEvent {
  return {
    type: 'session.closed',
    at: new Date().toISOString(),
    session: s.id,
    protocol: 'smtp',
    reason: 'error',
    bytesIn: 0,
    bytesOut: 0,
    durationMs: 0,
  };
}

export interface GuardDeps {
  listener: string;
  logger: Logger;
  /** the gateway's session id and logger of an smtp-server session, once it has one */
  sessionOf(id: string): { id: string; log: Logger } | undefined;
  /** the server's open connections: a reply after the callback is spent goes straight out */
  connections(): Iterable<{ id: string; send(code: number, text: string): void }>;
}

export class HandlerGuard {
  /** smtp-server session ids of connections that met a bug: they end with reason 'error' */
  private readonly faulted = new Set<string>();

  constructor(private readonly deps: GuardDeps) {}

  /** log a bug with the session id and turn it into the 421 that closes the connection */
  fault(err: unknown, s: SMTPServerSession): SmtpReplyError {
    this.faulted.add(s.id);
    const sess = this.deps.sessionOf(s.id);
    (sess?.log ?? this.deps.logger).error('session fault: closing the connection', {
      session: sess?.id,
      listener: this.deps.listener,
      err,
    });
    return faultReply();
  }

  /** whether the connection met a bug; forgets it (called once, at its close) */
  takeFaulted(s: SMTPServerSession): boolean {
    return this.faulted.delete(s.id);
  }

  /** Reply errors go to the client as they are; anything else is a fault. */
  toClient(err: unknown, s: SMTPServerSession): SmtpReplyError {
    return err instanceof SmtpReplyError ? err : this.fault(err, s);
  }

  /** Run a handler's body; a throw ends this connection instead of the process. */
  contain<C extends Callback>(s: SMTPServerSession, cb: C, body: (cb: C) => void): void {
    const reply = once(cb);
    try {
      body(reply);
    } catch (err) {
      reply(this.fault(err, s));
    }
  }

  /** Answer with what `work` gives; a throw while answering, where the callback is spent, cuts the connection. */
  answer<T>(s: SMTPServerSession, cb: Callback, work: Promise<T>, ok: (value: T) => void): void {
    work
      .then(ok, (err: unknown) => cb(this.toClient(err, s)))
      .catch((err: unknown) => {
        const reply = this.fault(err, s);
        for (const c of this.deps.connections())
          if (c.id === s.id) c.send(reply.responseCode, reply.message);
      });
  }
}
