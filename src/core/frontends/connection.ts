/**
 * The client side of one pre-auth session, shared by the IMAP and POP3 state machines:
 * the socket (swapped for a TLSSocket after STARTTLS/STLS), the pre-auth idle timer,
 * session events and the single close path. The splice takes the socket over after login.
 */
import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import type { CloseReason, SessionProtocol } from '../bus.js';
import type { Logger } from '../log/logger.js';
import { splice, type Splice } from './splice.js';
import type { FrontendDeps, LoginResult, SessionInfo } from './types.js';

export class ClientConnection {
  socket: Socket;
  closed = false;
  bytesIn = 0;
  bytesOut = 0;
  user: string | undefined;
  readonly started = Date.now();
  readonly log: Logger;
  private timer: NodeJS.Timeout | undefined;
  private onBytes: ((chunk: Buffer) => void) | undefined;
  private spliced: Splice | undefined;

  private readonly dataListener = (chunk: Buffer): void => {
    this.bytesIn += chunk.length;
    this.armTimer();
    this.onBytes?.(chunk);
  };

  constructor(
    socket: Socket,
    readonly protocol: SessionProtocol,
    readonly info: SessionInfo,
    readonly deps: FrontendDeps,
  ) {
    this.socket = socket;
    this.log = deps.logger.child({ session: info.id, protocol });
    socket.on('error', (err) => this.close('client-closed', err.message));
    socket.on('close', () => this.close('client-closed'));
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
    this.timer = setTimeout(() => this.onIdle?.(), this.deps.limits.idleMs);
    this.timer.unref?.();
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
    if (this.timer) clearTimeout(this.timer);
    this.socket.destroy();
    this.emitClosed(reason, detail);
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
  ): void {
    if (this.closed) {
      result.upstream.socket.destroy();
      result.release();
      return;
    }
    if (this.timer) clearTimeout(this.timer);
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
      onClose: (r) => {
        untrack();
        this.closed = true;
        this.bytesIn = preIn + r.bytesIn;
        this.bytesOut = preOut + r.bytesOut;
        this.emitClosed(r.reason, r.detail);
      },
    });
    untrack = this.deps.track(result.user, result.target, this.info, this.spliced);
    result.release();
  }
}
