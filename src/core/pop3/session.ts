/**
 * The POP3 front-end's AUTHORIZATION state (RFC 1939 4): greeting, CAPA (RFC 2449), STLS
 * (RFC 2595), USER/PASS, AUTH PLAIN and LOGIN (RFC 5034), QUIT. A successful login hands
 * the connection to the splice; the backend then runs the TRANSACTION state itself.
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { closesConnection, pop3Reply, type Outcome } from '../replies.js';
import { ClientConnection } from '../sessions/client-connection.js';
import { BAD_USER_CHARS, decodeSasl, parsePlain } from '../sessions/sasl.js';
import { UidlRewriter } from '../transfer/uidl/rewrite.js';
import type { FrontendDeps, Release, SessionInfo } from '../sessions/types.js';
import { Pop3LineParser, type Pop3ParseEvent } from './parser.js';

/** `slot`: the connection-limit slot, released by the connection when it ends */
export function startPop3Session(
  socket: Socket,
  info: SessionInfo,
  deps: FrontendDeps,
  slot: Release,
): void {
  new Pop3Session(socket, info, deps, slot).start();
}

class Pop3Session {
  private readonly conn: ClientConnection;
  private parser: Pop3LineParser;
  private busy = false;
  private lineWaiter: ((ev: Pop3ParseEvent) => void) | undefined;
  private user: string | undefined;
  private failures = 0;
  private bad = 0;
  private commands = 0;

  constructor(
    socket: Socket,
    private readonly info: SessionInfo,
    private readonly deps: FrontendDeps,
    slot: Release,
  ) {
    this.conn = new ClientConnection(socket, 'pop3', info, deps, slot);
    this.parser = new Pop3LineParser(deps.limits);
  }

  start(): void {
    if (this.conn.tls) this.conn.emitTls(this.conn.socket as TLSSocket);
    if (this.deps.stopping()) return this.conn.closeWith(pop3Reply('shutting-down'), 'shutdown');
    this.conn.onIdle = () =>
      this.conn.closeWith('-ERR Disconnected for inactivity.\r\n', 'preauth-timeout');
    this.conn.write('+OK Server ready.\r\n');
    this.conn.read((chunk) => {
      this.parser.feed(chunk);
      if (this.busy && !this.lineWaiter && this.parser.buffered > this.deps.limits.maxLineBytes) {
        return this.conn.closeWith('-ERR Too much data before login.\r\n', 'protocol-error');
      }
      this.pump();
    });
  }

  private loginAllowed(): boolean {
    return this.conn.tls || this.info.listener.plaintextLogin(this.info.client);
  }

  private pump(): void {
    while (!this.conn.closed) {
      if (this.busy && !this.lineWaiter) return;
      const ev = this.parser.next();
      if (!ev) return;
      if (this.lineWaiter) {
        const w = this.lineWaiter;
        this.lineWaiter = undefined;
        w(ev);
        continue;
      }
      if (ev.kind === 'error') {
        this.protocolError(ev.text, ev.fatal);
        continue;
      }
      if (++this.commands > this.deps.limits.maxCommands) {
        return this.conn.closeWith('-ERR Too many commands before login.\r\n', 'protocol-error');
      }
      this.dispatch(ev.name, ev.arg);
    }
  }

  private protocolError(text: string, fatal: boolean): void {
    this.bad++;
    if (fatal || this.bad >= this.deps.limits.maxBadCommands) {
      return this.conn.closeWith(`-ERR ${text} Closing.\r\n`, 'protocol-error', text);
    }
    this.conn.write(`-ERR ${text}\r\n`);
  }

  private capa(): string {
    const lines = ['CAPA', 'TOP', 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE'];
    if (!this.conn.tls && this.info.listener.secureContext()) lines.push('STLS');
    // RFC 2595 2.2 / RFC 5034 3: no USER or SASL while plaintext logins are refused.
    if (this.loginAllowed()) lines.push('USER', 'SASL PLAIN LOGIN');
    return `+OK Capability list follows\r\n${lines.join('\r\n')}\r\n.\r\n`;
  }

  private dispatch(name: string, arg: string): void {
    switch (name) {
      case 'CAPA':
        return this.conn.write(this.capa());
      case 'QUIT':
        return this.conn.closeWith('+OK Logging out.\r\n', 'client-logout');
      case 'STLS':
        return this.run(() => this.stls());
      case 'USER':
        if (this.refusePlaintext()) return;
        if (
          arg === '' ||
          Buffer.byteLength(arg) > this.deps.limits.maxUserBytes ||
          BAD_USER_CHARS.test(arg)
        ) {
          return this.protocolError('Invalid user name.', false);
        }
        this.user = arg;
        return this.conn.write('+OK\r\n');
      case 'PASS': {
        if (this.refusePlaintext()) return;
        const user = this.user;
        if (user === undefined) return this.protocolError('No USER given.', false);
        this.user = undefined;
        return this.run(() => this.login(user, arg, 'USER'));
      }
      case 'AUTH':
        return this.run(() => this.auth(arg));
      default:
        return this.protocolError(
          name === '' ? 'Invalid command.' : 'Unknown command or not valid before login.',
          false,
        );
    }
  }

  private run(fn: () => Promise<void>): void {
    this.busy = true;
    fn()
      .catch((err: unknown) => this.conn.fault(err))
      .finally(() => {
        this.busy = false;
        this.lineWaiter = undefined;
        this.conn.resume();
        if (!this.conn.closed) setImmediate(() => this.conn.guard(() => this.pump()));
      });
  }

  private refusePlaintext(): boolean {
    if (this.loginAllowed()) return false;
    this.conn.write(pop3Reply('privacy-required'));
    return true;
  }

  private async stls(): Promise<void> {
    const ctx = this.info.listener.secureContext();
    if (this.conn.tls || !ctx) return void this.conn.write('-ERR STLS is not available here.\r\n');
    // RFC 2595 4 and CVE-2011-0411 and kin: nothing pipelined after STLS is read through TLS.
    if (this.parser.buffered > 0) {
      return this.conn.closeWith(
        '-ERR Commands sent after STLS before the TLS handshake are refused.\r\n',
        'protocol-error',
        'pipelined after STLS',
      );
    }
    this.conn.pause();
    await this.conn.writeAndWait('+OK Begin TLS negotiation now.\r\n');
    this.parser = new Pop3LineParser(this.deps.limits);
    this.user = undefined;
    await this.conn.upgrade(ctx);
  }

  private async saslResponse(challenge: string): Promise<Buffer | undefined> {
    this.conn.write(`+ ${challenge}\r\n`);
    const ev = await new Promise<Pop3ParseEvent>((resolve) => {
      this.lineWaiter = resolve;
      this.pump();
    });
    if (ev.kind === 'error') return void this.protocolError(ev.text, ev.fatal);
    const text = ev.raw.toString('latin1');
    if (text === '*') return void this.conn.write('-ERR Authentication cancelled.\r\n');
    const data = decodeSasl(text);
    if (!data) return void this.protocolError('Invalid base64 data.', false);
    return data;
  }

  private async auth(arg: string): Promise<void> {
    const [mechRaw, initial, extra] = arg.split(' ');
    const mech = mechRaw?.toUpperCase() ?? '';
    if (mech === '') return void this.conn.write('+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n');
    if (extra !== undefined) return this.protocolError('Invalid AUTH arguments.', false);
    if (mech !== 'PLAIN' && mech !== 'LOGIN')
      return void this.conn.write('-ERR Unsupported authentication mechanism.\r\n');
    if (this.refusePlaintext()) return;
    let first: Buffer | undefined;
    if (initial !== undefined) {
      first = decodeSasl(initial);
      if (!first) return this.protocolError('Invalid base64 data.', false);
    }
    if (mech === 'PLAIN') {
      const msg = first ?? (await this.saslResponse(''));
      if (!msg) return;
      const p = parsePlain(msg);
      if (!p.ok && p.why === 'syntax') return this.protocolError('Invalid PLAIN message.', false);
      if (!p.ok) return this.refuse('auth-failed', false);
      return this.login(p.user, p.password, 'PLAIN');
    }
    const user = first ?? (await this.saslResponse('VXNlcm5hbWU6'));
    if (!user) return;
    const password = await this.saslResponse('UGFzc3dvcmQ6');
    if (!password) return;
    return this.login(user.toString('utf8'), password.toString('utf8'), 'LOGIN-SASL');
  }

  private async login(user: string, password: string, mechanism: string): Promise<void> {
    const lim = this.deps.limits;
    if (user === '' || Buffer.byteLength(user) > lim.maxUserBytes || BAD_USER_CHARS.test(user)) {
      return this.protocolError('Invalid user name.', false);
    }
    if (Buffer.byteLength(password) > lim.maxPasswordBytes)
      return this.protocolError('Password too long.', false);
    if (this.deps.stopping()) return this.conn.closeWith(pop3Reply('shutting-down'), 'shutdown');
    this.conn.pause();
    const r = await this.deps.login({ protocol: 'pop3', user, password, mechanism }, this.info);
    if (this.conn.closed) {
      if (r.ok) {
        r.upstream.socket.destroy();
        r.release();
      }
      return;
    }
    if (!r.ok) return this.refuse(r.outcome, r.close);
    const filter = r.target === 'destination' ? await this.uidlFilter(r.user) : undefined;
    this.conn.splice(
      r,
      `+OK ${r.upstream.loginText || 'Logged in.'}\r\n`,
      this.parser.takeRemaining(),
      filter,
    );
  }

  /**
   * A moved account's POP3 clients keep the UIDLs they knew at the source (RFC 1939 7: a
   * client that leaves mail on the server downloads what has a UIDL it never saw).
   * Without a readable map the session goes on with the destination's own UIDLs.
   */
  private async uidlFilter(user: string): Promise<UidlRewriter | undefined> {
    try {
      const map = await this.deps.pop3Uidls?.(user);
      return map ? new UidlRewriter(map) : undefined;
    } catch (err) {
      this.conn.log.warn('POP3 UIDL map unreadable: destination UIDLs shown', { err });
      return undefined;
    }
  }

  private refuse(outcome: Outcome, close: boolean): void {
    if (outcome === 'auth-failed') this.failures++;
    const line = pop3Reply(outcome);
    if (
      closesConnection(outcome) ||
      close ||
      this.failures >= this.deps.limits.maxFailuresPerConnection
    ) {
      return this.conn.closeWith(
        line,
        outcome === 'auth-failed' ? 'too-many-failures' : 'limit',
        outcome,
      );
    }
    this.conn.write(line);
  }
}
