/**
 * The client side of one pre-auth session, shared by the IMAP and POP3 state machines:
 * the socket (swapped for a TLSSocket after STARTTLS/STLS), the pre-auth idle timer and
 * login deadline, session events and the single close path. The splice takes the socket
 * over after login.
 *
 * The connection owns its connection-limit slot and releases it itself, exactly once,
 * when it ends: before the greeting, after a failed handshake or STARTTLS, at the end of
 * the splice, on a fault. A 'close' listener on the socket would not do: STARTTLS has to
 * take the plain socket's listeners away.
 *
 * It is also where a bug in the code that handles one connection stops: fault() logs it
 * with the session id, answers the protocol's last line and closes this connection only.
 */
import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import type { CloseReason } from '../bus.js';
import type { Logger } from '../log/logger.js';
import { imapBye, pop3Reply } from '../replies.js';
import { splice, type Splice, type SpliceFilter } from './splice.js';
import type { FrontendDeps, LoginResult, Release, SessionInfo } from './types.js';

/** the last line before closing, by protocol: a deadline passed, a bug was met */
const LAST_LINE: Record<'imap' | 'pop3', Record<'deadline' | 'fault', string>> = {
  imap: {
    deadline: imapBye('login-timeout'),
    fault: imapBye('internal-error'),
  },
  pop3: {
    deadline: pop3Reply('login-timeout'),
    fault: pop3Reply('internal-error'),
  },
};

export class ClientConnection {
  socket: Socket;
  closed = false;
  bytesIn = 0;
  bytesOut = 0;
  user: string | undefined;
  readonly started = Date.now();
  readonly log: Logger;
  private timer: NodeJS.Timeout | undefined;
  private readonly deadline: NodeJS.Timeout;
  private onBytes: ((chunk: Buffer) => void) | undefined;
  private spliced: Splice | undefined;

  private readonly dataListener = (chunk: Buffer): void => {
    this.bytesIn += chunk.length;
    this.armTimer();
    this.guard(() => this.onBytes?.(chunk));
  };

  /**
   * `slot`: the connection-limit slot taken at accept; this object releases it when the
   * connection ends, also when the socket was already gone on arrival.
   */
  constructor(
    socket: Socket,
    readonly protocol: 'imap' | 'pop3',
    readonly info: SessionInfo,
    readonly deps: FrontendDeps,
    private readonly slot: Release,
  ) {
    this.socket = socket;
    this.log = deps.logger.child({ session: info.id, protocol });
    this.deadline = setTimeout(
      () => this.closeWith(LAST_LINE[protocol].deadline, 'preauth-timeout', 'login deadline'),
      deps.limits.loginDeadlineMs,
    );
    this.deadline.unref?.();
    socket.on('error', (err) => this.close('client-closed', err.message));
    socket.on('close', () => this.close('client-closed'));
    // 'close' may have been emitted already (a TLS socket that died right after its
    // handshake): this connection ends once its session has started.
    if (socket.destroyed) queueMicrotask(() => this.close('client-closed'));
    deps.bus.emit({
      type: 'session.opened',
      at: new Date().toISOString(),
      session: info.id,
      protocol,
      listener: info.listener.name,
      client: { address: info.client.address, port: info.client.port },
      tls: this.tls,
    });
  }

  get tls(): boolean {
    return (this.socket as TLSSocket).encrypted === true;
  }

  /** Start reading; every chunk goes to `fn`. */
  read(fn: (chunk: Buffer) => void): void {
    this.onBytes = fn;
    this.socket.on('data', this.dataListener);
    this.armTimer();
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    if (!this.closed && !this.spliced) this.socket.resume();
  }

  write(text: string | Buffer): void {
    if (this.closed || !this.socket.writable) return;
    this.bytesOut += text.length;
    this.socket.write(text);
  }

  /** Write and wait until the bytes left (before a TLS handshake takes the socket over). */
  writeAndWait(text: string): Promise<void> {
    if (this.closed || !this.socket.writable) return Promise.resolve();
    this.bytesOut += text.length;
    return new Promise((resolve) => this.socket.write(text, () => resolve()));
  }

  private armTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.guard(() => this.onIdle?.()), this.deps.limits.idleMs);
    this.timer.unref?.();
  }

  /** Run code of this session: a throw ends this session (fault), never another. */
  guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.fault(err);
    }
  }

  /**
   * A bug met while handling this connection: log it with the session id, tell the
   * client (RFC 5530 SERVERBUG), close. The session ends with reason 'error', which the
   * metrics count as a fault.
   */
  fault(err: unknown): void {
    this.log.error('session fault: closing the connection', { err });
    if (this.spliced) return this.spliced.close('error');
    const detail = err instanceof Error ? err.message : String(err);
    try {
      this.closeWith(LAST_LINE[this.protocol].fault, 'error', detail);
    } finally {
      this.close('error', detail);
    }
  }

  /** called when the pre-auth idle timer fires; the state machine writes its BYE */
  onIdle: (() => void) | undefined;

  /** Write a last line and close (RFC 3501 7.1.5 BYE, or POP3 -ERR). */
  closeWith(text: string, reason: CloseReason, detail?: string): void {
    if (this.closed) return;
    this.write(text);
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 2000).unref();
    this.close(reason, detail);
  }

  close(reason: CloseReason, detail?: string): void {
    if (this.closed || this.spliced) return;
    this.closed = true;
    this.stopTimers();
    try {
      this.socket.destroy();
      this.emitClosed(reason, detail);
    } finally {
      this.slot();
    }
  }

  private stopTimers(): void {
    if (this.timer) clearTimeout(this.timer);
    clearTimeout(this.deadline);
  }

  private emitClosed(reason: CloseReason, detail?: string): void {
    this.deps.bus.emit({
      type: 'session.closed',
      at: new Date().toISOString(),
      session: this.info.id,
      protocol: this.protocol,
      user: this.user,
      reason,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      durationMs: Date.now() - this.started,
      detail,
    });
  }

  /**
   * STARTTLS/STLS (RFC 3501 6.2.1, RFC 2595 4): the "go ahead" was written; wrap the
   * socket. The caller has already refused any bytes pipelined after the command.
   */
  async upgrade(ctx: SecureContext): Promise<boolean> {
    const plain = this.socket;
    plain.off('data', this.dataListener);
    plain.removeAllListeners('error');
    plain.removeAllListeners('close');
    // An 'error' without a listener would throw; the TLS socket reports what matters.
    plain.on('error', () => undefined);
    const secure = new TLSSocket(plain, { isServer: true, secureContext: ctx });
    this.socket = secure;
    secure.on('error', (err) => this.close('client-closed', `TLS: ${err.message}`));
    secure.on('close', () => this.close('client-closed'));
    const ok = await new Promise<boolean>((resolve) => {
      secure.once('secure', () => resolve(true));
      secure.once('close', () => resolve(false));
    });
    if (!ok) return false;
    this.emitTls(secure);
    secure.on('data', this.dataListener);
    this.armTimer();
    return true;
  }

  emitTls(secure: TLSSocket): void {
    this.deps.bus.emit({
      type: 'session.tls',
      at: new Date().toISOString(),
      session: this.info.id,
      protocol: this.protocol,
      version: secure.getProtocol() ?? 'unknown',
      cipher: secure.getCipher()?.name ?? 'unknown',
    });
  }

  /** Hand the socket to the splice; `greeting` is the login reply for the client. */
  splice(
    result: Extract<LoginResult, { ok: true }>,
    reply: string | Buffer,
    clientRest: Buffer,
    filter?: SpliceFilter,
  ): void {
    if (this.closed) {
      result.upstream.socket.destroy();
      result.release();
      return;
    }
    this.stopTimers();
    this.socket.off('data', this.dataListener);
    this.user = result.user;
    this.write(reply);
    const preIn = this.bytesIn - clientRest.length;
    const preOut = this.bytesOut;
    let untrack: () => void = () => undefined;
    this.spliced = splice(this.socket, result.upstream.socket, {
      idleMs: this.deps.spliceIdleMs,
      toBackend: clientRest,
      toClient: result.upstream.buffered,
      backendReader: result.upstream.reader,
      filter,
      onClose: (r) => {
        this.closed = true;
        try {
          untrack();
          this.bytesIn = preIn + r.bytesIn;
          this.bytesOut = preOut + r.bytesOut;
          this.emitClosed(r.reason, r.detail);
        } finally {
          this.slot();
        }
      },
      onFault: (err) => this.log.error('session fault in the splice: closing it', { err }),
    });
    try {
      untrack = this.deps.track(result.user, result.target, this.info, this.spliced);
    } finally {
      result.release();
    }
  }
}
