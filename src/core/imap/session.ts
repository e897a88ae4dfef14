/**
 * The IMAP front-end's state machine for the not-authenticated state (RFC 3501 6.1, 6.2):
 * greeting, CAPABILITY, NOOP, LOGOUT, ID, STARTTLS, LOGIN and AUTHENTICATE PLAIN / LOGIN.
 * A successful login hands the connection to the splice; from then on the backend speaks.
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { closesConnection, imapBye, imapReply, type Outcome } from '../replies.js';
import { ClientConnection } from '../sessions/client-connection.js';
import { BAD_USER_CHARS, decodeSasl, parsePlain } from '../sessions/sasl.js';
import type { FrontendDeps, Release, SessionInfo } from '../sessions/types.js';
import { argText, ImapCommandParser, type ImapCommand, type ImapParseEvent } from './parser.js';

const GREETING_TEXT = 'Server ready.';

/** `slot`: the connection-limit slot, released by the connection when it ends */
export function startImapSession(
  socket: Socket,
  info: SessionInfo,
  deps: FrontendDeps,
  slot: Release,
): void {
  new ImapSession(socket, info, deps, slot).start();
}

class ImapSession {
  private readonly conn: ClientConnection;
  private parser: ImapCommandParser;
  private busy = false;
  /** a "+" is waiting in the socket's write buffer: read and parse nothing more until it drains */
  private draining = false;
  private lineWaiter: ((ev: ImapParseEvent) => void) | undefined;
  private failures = 0;
  private bad = 0;
  private commands = 0;

  constructor(
    socket: Socket,
    private readonly info: SessionInfo,
    private readonly deps: FrontendDeps,
    slot: Release,
  ) {
    this.conn = new ClientConnection(socket, 'imap', info, deps, slot);
    this.parser = new ImapCommandParser(deps.limits);
  }

  start(): void {
    if (this.conn.tls) this.conn.emitTls(this.conn.socket as TLSSocket);
    if (this.deps.stopping()) return this.conn.closeWith(imapBye('shutting-down'), 'shutdown');
    this.conn.onIdle = () =>
      this.conn.closeWith('* BYE Disconnected for inactivity.\r\n', 'preauth-timeout');
    this.conn.write(`* OK [CAPABILITY ${this.capabilities()}] ${GREETING_TEXT}\r\n`);
    this.conn.read((chunk) => {
      this.parser.feed(chunk);
      // A client flooding us while a login is in progress is cut off, not buffered.
      if (this.parser.buffered > this.deps.limits.maxLineBytes + this.deps.limits.maxLiteralBytes) {
        if (this.busy && !this.lineWaiter)
          return this.conn.closeWith('* BYE Too much data before login.\r\n', 'protocol-error');
      }
      this.pump();
    });
  }

  private loginAllowed(): boolean {
    return this.conn.tls || this.info.listener.plaintextLogin(this.info.client);
  }

  private capabilities(): string {
    const caps = ['IMAP4rev1', 'LITERAL+', 'SASL-IR', 'ID'];
    if (!this.conn.tls && this.info.listener.secureContext()) caps.push('STARTTLS');
    // RFC 3501 6.2.3 / 7.2.1: LOGINDISABLED when plaintext logins are refused.
    if (this.loginAllowed()) caps.push('AUTH=PLAIN', 'AUTH=LOGIN');
    else caps.push('LOGINDISABLED');
    return caps.join(' ');
  }

  private pump(): void {
    while (!this.conn.closed) {
      if (this.draining || (this.busy && !this.lineWaiter)) return;
      const ev = this.parser.next();
      if (!ev) return;
      if (this.lineWaiter) {
        const w = this.lineWaiter;
        this.lineWaiter = undefined;
        w(ev);
        continue;
      }
      switch (ev.kind) {
        case 'continue':
          this.continueLiteral();
          break;
        case 'error':
          this.protocolError(ev.tag, ev.text, ev.fatal);
          break;
        case 'line':
          break; // not produced outside line mode
        case 'command':
          if (++this.commands > this.deps.limits.maxCommands) {
            return this.conn.closeWith(
              '* BYE Too many commands before login.\r\n',
              'protocol-error',
            );
          }
          this.dispatch(ev.command);
          break;
      }
    }
  }

  /**
   * "+" for a synchronising literal (RFC 3501 7.5). A client that sends {0} lines without
   * reading our replies would fill the socket's write buffer: stop reading it until it
   * drains, as a client that reads does not notice.
   */
  private continueLiteral(): void {
    this.conn.write('+ Ready for literal data.\r\n');
    const socket = this.conn.socket;
    if (!socket.writableNeedDrain) return;
    this.draining = true;
    this.conn.pause();
    socket.once('drain', () => {
      this.draining = false;
      if (this.conn.closed || this.conn.socket !== socket) return;
      if (!this.busy) this.conn.resume();
      this.conn.guard(() => this.pump());
    });
  }

  private protocolError(tag: string | undefined, text: string, fatal: boolean): void {
    this.bad++;
    this.conn.write(`${tag ?? '*'} BAD ${text}\r\n`);
    if (fatal || this.bad >= this.deps.limits.maxBadCommands) {
      this.conn.closeWith('* BYE Too many invalid commands.\r\n', 'protocol-error', text);
    }
  }

  private dispatch(c: ImapCommand): void {
    const ok = (text: string): void => this.conn.write(`${c.tag} OK ${text}\r\n`);
    switch (c.name) {
      case 'CAPABILITY':
        this.conn.write(`* CAPABILITY ${this.capabilities()}\r\n`);
        return ok('Capability completed.');
      case 'NOOP':
        return ok('NOOP completed.');
      case 'LOGOUT':
        this.conn.write('* BYE Logging out.\r\n');
        ok('Logout completed.');
        return this.conn.closeWith('', 'client-logout');
      case 'ID': {
        // RFC 2971: the client's fields are not passed on (they could forge x-originating-ip).
        const a = c.args[0];
        if (c.args.length !== 1 || (a?.kind !== 'list' && a?.kind !== 'nil'))
          return this.protocolError(c.tag, 'Invalid ID arguments.', false);
        this.conn.write('* ID NIL\r\n');
        return ok('ID completed.');
      }
      case 'STARTTLS':
        return this.run(() => this.startTls(c.tag));
      case 'LOGIN':
        return this.run(() => this.loginCommand(c));
      case 'AUTHENTICATE':
        return this.run(() => this.authenticate(c));
      default:
        return this.protocolError(c.tag, 'Command not valid before login.', false);
    }
  }

  /** Commands that wait for something run one at a time; input waits in the parser. */
  private run(fn: () => Promise<void>): void {
    this.busy = true;
    fn()
      .catch((err: unknown) => this.conn.fault(err))
      .finally(() => {
        this.busy = false;
        this.lineWaiter = undefined;
        if (!this.draining) this.conn.resume();
        if (!this.conn.closed) setImmediate(() => this.conn.guard(() => this.pump()));
      });
  }

  private async startTls(tag: string): Promise<void> {
    const ctx = this.info.listener.secureContext();
    if (this.conn.tls || !ctx)
      return void this.conn.write(`${tag} BAD STARTTLS is not available here.\r\n`);
    // Bytes pipelined after STARTTLS must never be read as if they came through TLS
    // (CVE-2011-0411, CVE-2014-3556, CVE-2021-33515): refuse and close.
    if (this.parser.buffered > 0) {
      this.conn.write(
        `${tag} BAD Commands sent after STARTTLS before the TLS handshake are refused.\r\n`,
      );
      return this.conn.closeWith(
        '* BYE Command injection after STARTTLS refused.\r\n',
        'protocol-error',
        'pipelined after STARTTLS',
      );
    }
    this.conn.pause();
    await this.conn.writeAndWait(`${tag} OK Begin TLS negotiation now.\r\n`);
    this.parser = new ImapCommandParser(this.deps.limits);
    await this.conn.upgrade(ctx);
  }

  private nextLine(): Promise<ImapParseEvent> {
    this.parser.expectLine();
    return new Promise((resolve) => {
      this.lineWaiter = resolve;
      this.pump();
    });
  }

  /** A SASL response line; undefined after a cancel or error (already answered). */
  private async saslResponse(tag: string, challenge: string): Promise<Buffer | undefined> {
    this.conn.write(`+ ${challenge}\r\n`);
    const ev = await this.nextLine();
    if (ev.kind !== 'line') {
      if (ev.kind === 'error') this.protocolError(tag, ev.text, ev.fatal);
      return undefined;
    }
    const text = ev.line.toString('latin1');
    // RFC 3501 6.2.2: "*" cancels the exchange.
    if (text === '*') return void this.conn.write(`${tag} BAD Authentication cancelled.\r\n`);
    const data = decodeSasl(text);
    if (!data) return void this.protocolError(tag, 'Invalid base64 data.', false);
    return data;
  }

  private refusePlaintext(tag: string): boolean {
    if (this.loginAllowed()) return false;
    this.conn.write(imapReply('privacy-required', tag));
    return true;
  }

  private async loginCommand(c: ImapCommand): Promise<void> {
    const user = argText(c.args[0]);
    const password = argText(c.args[1]);
    if (c.args.length !== 2 || user === undefined || password === undefined) {
      return this.protocolError(c.tag, 'LOGIN needs a user name and a password.', false);
    }
    if (this.refusePlaintext(c.tag)) return;
    await this.login(c.tag, user, password, 'LOGIN');
  }

  private async authenticate(c: ImapCommand): Promise<void> {
    const mech = argText(c.args[0])?.toUpperCase();
    const initial = c.args[1];
    if (!mech || c.args.length > 2 || (initial && initial.kind !== 'atom')) {
      return this.protocolError(c.tag, 'Invalid AUTHENTICATE arguments.', false);
    }
    if (mech !== 'PLAIN' && mech !== 'LOGIN') {
      return void this.conn.write(`${c.tag} NO Unsupported authentication mechanism.\r\n`);
    }
    if (this.refusePlaintext(c.tag)) return;
    let first: Buffer | undefined;
    if (initial) {
      first = decodeSasl(argText(initial) ?? '');
      if (!first) return this.protocolError(c.tag, 'Invalid base64 data.', false);
    }
    if (mech === 'PLAIN') {
      const msg = first ?? (await this.saslResponse(c.tag, ''));
      if (!msg) return;
      const p = parsePlain(msg);
      if (!p.ok && p.why === 'syntax')
        return this.protocolError(c.tag, 'Invalid PLAIN message.', false);
      if (!p.ok) return this.refuse(c.tag, 'auth-failed', false);
      return this.login(c.tag, p.user, p.password, 'PLAIN');
    }
    // LOGIN (draft-murchison-sasl-login): "Username:" then "Password:", base64.
    const user = first ?? (await this.saslResponse(c.tag, 'VXNlcm5hbWU6'));
    if (!user) return;
    const password = await this.saslResponse(c.tag, 'UGFzc3dvcmQ6');
    if (!password) return;
    return this.login(c.tag, user.toString('utf8'), password.toString('utf8'), 'LOGIN-SASL');
  }

  private async login(
    tag: string,
    user: string,
    password: string,
    mechanism: string,
  ): Promise<void> {
    const lim = this.deps.limits;
    if (user === '' || Buffer.byteLength(user) > lim.maxUserBytes || BAD_USER_CHARS.test(user)) {
      return this.protocolError(tag, 'Invalid user name.', false);
    }
    if (Buffer.byteLength(password) > lim.maxPasswordBytes)
      return this.protocolError(tag, 'Password too long.', false);
    if (this.deps.stopping()) return this.conn.closeWith(imapBye('shutting-down'), 'shutdown');
    this.conn.pause();
    const r = await this.deps.login({ protocol: 'imap', user, password, mechanism }, this.info);
    if (this.conn.closed) {
      if (r.ok) {
        r.upstream.socket.destroy();
        r.release();
      }
      return;
    }
    if (!r.ok) return this.refuse(tag, r.outcome, r.close);
    let text = r.upstream.loginText || 'Logged in';
    if (!/^\[CAPABILITY /i.test(text) && r.upstream.capabilities) {
      text = `[CAPABILITY ${r.upstream.capabilities.join(' ')}] ${text.replace(/^\[[^\]]*\]\s*/, '')}`;
    }
    this.conn.splice(r, `${tag} OK ${text}\r\n`, this.parser.takeRemaining());
  }

  private refuse(tag: string, outcome: Outcome, close: boolean): void {
    if (outcome === 'auth-failed') this.failures++;
    const line = imapReply(outcome, tag);
    const tooMany = this.failures >= this.deps.limits.maxFailuresPerConnection;
    if (closesConnection(outcome)) return this.conn.closeWith(line, 'limit', outcome);
    if (close || tooMany) {
      this.conn.write(line);
      return this.conn.closeWith('* BYE Too many failed logins.\r\n', 'too-many-failures', outcome);
    }
    this.conn.write(line);
  }
}
