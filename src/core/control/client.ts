/**
 * The other side of the control socket (server.ts): commands that want the running proxy
 * to act (accounts changes) or to report (monitor) connect here. Nothing listening means
 * the proxy is not running, which callers handle by opening the store themselves
 * (proxy-or-store.ts).
 */
import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';
import { OperatorError } from '../errors.js';
import { frame, LineReader } from './framing.js';
import {
  CONTROL_PROTOCOL_VERSION,
  type ControlError,
  type ControlMethod,
  type Hello,
  type MonitorSnapshot,
  type ParamsOf,
  type ResultOf,
  type ServerMessage,
} from './protocol.js';

/** connect + hello, and each call after it */
const DEFAULT_TIMEOUT_MS = 10_000;

/** Nothing listens at the socket (ENOENT, ECONNREFUSED): `autoport proxy` is not running. */
export class ControlUnavailableError extends OperatorError {
  override readonly name = 'ControlUnavailableError';
  constructor(
    readonly socketPath: string,
    options?: { cause?: unknown },
  ) {
    super(
      `autoport proxy is not running (nothing listens on ${socketPath})`,
      'start `autoport proxy`, or check control.socket in the config',
      'ENOPROXY',
      options,
    );
  }
}

/** The proxy answered ok:false: its message, what to try and the code, as it sent them. */
export class ControlRequestError extends OperatorError {
  override readonly name = 'ControlRequestError';
  constructor(error: ControlError) {
    super(error.message, error.hint ?? "see the proxy's log", error.code ?? 'ECONTROL');
  }
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class ControlClient extends EventEmitter<{ close: [err?: Error] }> {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly reader = new LineReader();
  private helloResult: Hello | undefined;
  private onSnapshot: ((s: MonitorSnapshot) => void) | undefined;
  /** why the connection ended, once it did */
  private ended: Error | undefined;
  private closeReason: Error | undefined;

  constructor(
    private readonly socket: Socket,
    private readonly socketPath: string,
    private readonly timeoutMs: number,
  ) {
    super();
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => (this.closeReason ??= err));
    socket.on('close', () => this.onClose());
  }

  get hello(): Hello {
    if (!this.helloResult) throw new Error('ControlClient used before hello');
    return this.helloResult;
  }

  /** @internal connectControl sets it once the proxy answered */
  setHello(h: Hello): void {
    this.helloResult = h;
  }

  call<M extends ControlMethod>(method: M, params: ParamsOf<M>): Promise<ResultOf<M>> {
    if (this.ended) return Promise.reject(this.ended);
    const id = this.nextId++;
    return new Promise<ResultOf<M>>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(
          new OperatorError(
            `autoport proxy did not answer ${method} within ${Math.round(this.timeoutMs / 1000)} s`,
            "see the proxy's log; if it hangs, restart it",
            'ETIMEDOUT',
          ),
        );
      }, this.timeoutMs);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.socket.write(frame({ id, method, params }));
    });
  }

  /**
   * Ask for a snapshot every `intervalMs` (the proxy clamps it); the result is the first.
   * `onSnapshot` gets each one pushed after it until close().
   */
  watch(intervalMs: number, onSnapshot: (s: MonitorSnapshot) => void): Promise<MonitorSnapshot> {
    this.onSnapshot = onSnapshot;
    return this.call('watch', { intervalMs });
  }

  close(): void {
    this.socket.end();
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    const lines = this.reader.push(chunk);
    if (lines === 'overflow') {
      this.closeReason = new OperatorError(
        'the proxy sent a control message longer than the protocol allows',
        'use the same autoport version for the proxy and this command',
        'EPROTOCOL',
      );
      this.socket.destroy();
      return;
    }
    for (const line of lines) {
      let msg: ServerMessage;
      try {
        msg = JSON.parse(line) as ServerMessage;
      } catch {
        this.closeReason = new OperatorError(
          'the proxy sent something that is not JSON on the control socket',
          `check that ${this.socketPath} is autoport's control socket`,
          'EPROTOCOL',
        );
        this.socket.destroy();
        return;
      }
      this.onMessage(msg);
    }
  }

  private onMessage(msg: ServerMessage): void {
    if ('push' in msg) {
      if (msg.push === 'snapshot') this.onSnapshot?.(msg.snapshot);
      return;
    }
    const p = this.pending.get(msg.id);
    if (!p) {
      // id 0: the proxy refused the connection or a line (EBUSY, ELINETOOLONG ...) and
      // closes it; the pending calls fail with that reason.
      if (!msg.ok) this.closeReason = new ControlRequestError(msg.error);
      return;
    }
    this.pending.delete(msg.id);
    clearTimeout(p.timer);
    if (msg.ok) p.resolve(msg.result);
    else p.reject(new ControlRequestError(msg.error));
  }

  private onClose(): void {
    const why =
      this.closeReason ??
      new OperatorError(
        'autoport proxy closed the control connection',
        'it may be stopping; run the command again',
        'ECONTROLCLOSED',
      );
    this.ended = why;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(why);
    }
    this.pending.clear();
    this.emit('close', this.closeReason);
  }
}

function connectError(socketPath: string, err: NodeJS.ErrnoException): Error {
  if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED')
    return new ControlUnavailableError(socketPath, { cause: err });
  if (err.code === 'EACCES' || err.code === 'EPERM')
    return new OperatorError(
      `the control socket ${socketPath} belongs to another user`,
      'run this command as the user that runs the proxy, e.g. sudo -u autoport autoport ...',
      'EACCES',
      { cause: err },
    );
  return new OperatorError(
    `cannot connect to the control socket ${socketPath}: ${err.code ?? err.message}`,
    'check control.socket in the config',
    err.code ?? 'ECONTROL',
    { cause: err },
  );
}

/** Connect, say hello, and check that both sides speak the same protocol version. */
export async function connectControl(
  socketPath: string,
  opts: { timeoutMs?: number } = {},
): Promise<ControlClient> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s = connect(socketPath);
    const timer = setTimeout(() => {
      s.destroy();
      reject(
        new OperatorError(
          `the control socket ${socketPath} did not accept within ${Math.round(timeoutMs / 1000)} s`,
          'the proxy may be overloaded or hung: see its log',
          'ETIMEDOUT',
        ),
      );
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(connectError(socketPath, err));
    });
  });
  const client = new ControlClient(socket, socketPath, timeoutMs);
  try {
    const hello = await client.call('hello', {});
    if (hello.protocol !== CONTROL_PROTOCOL_VERSION)
      throw new OperatorError(
        `the running proxy (autoport ${hello.version}) speaks control protocol ${hello.protocol}, this command ${CONTROL_PROTOCOL_VERSION}`,
        'run the autoport that matches the running proxy, or restart the proxy with this one',
        'EPROTOCOL',
      );
    client.setHello(hello);
    return client;
  } catch (err) {
    client.close();
    throw err;
  }
}
