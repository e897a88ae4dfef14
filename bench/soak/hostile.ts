/**
 * Hostile clients mixed into the soak. They run from their own loopback addresses against
 * the gateway's real brakes and limits; each may be refused or cut, and none may hurt the
 * well-behaved sessions running beside them. Each resolves with what the gateway did
 * (a short word for the report), never throws.
 */
import { connect } from 'node:net';
import { imapLogin, smallMessage, type Account } from './clients.js';
import { Wire } from './wire.js';

export type HostileKind =
  | 'slow'
  | 'garbage'
  | 'long-line'
  | 'literal-flood'
  | 'wrong-password'
  | 'cut-login-literal'
  | 'cut-append-literal'
  | 'cut-data';
export const HOSTILE_KINDS: readonly HostileKind[] = [
  'slow',
  'garbage',
  'long-line',
  'literal-flood',
  'wrong-password',
  'cut-login-literal',
  'cut-append-literal',
  'cut-data',
];

export interface HostileTarget {
  imap: number;
  submission: number;
  localAddress: string;
  ca: string;
  /** a real account, for the attacks that cut a logged-in session */
  account: Account;
  /** an account that exists, for wrong passwords (kept apart from the soak's accounts) */
  victim: string;
  /** bound on each attack's length */
  maxMs: number;
}

/**
 * A raw plaintext connection to the IMAP port: `feed` writes into it until it returns
 * false or the server closes. Resolves "closed" when the server ended it, "survived" when
 * the client gave up first.
 */
function raw(
  t: HostileTarget,
  feed: (write: (s: string) => boolean, step: number) => boolean,
  everyMs: number,
  timed = false,
): Promise<string> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const sock = connect({ host: '127.0.0.1', port: t.imap, localAddress: t.localAddress });
    let step = 0;
    let verdict = 'survived';
    const end = (): void => {
      clearInterval(tick);
      clearTimeout(stop);
      sock.destroy();
    };
    const tick = setInterval(() => {
      if (sock.destroyed || !sock.writable) return;
      if (!feed((s) => sock.write(s), step++)) end();
    }, everyMs);
    const stop = setTimeout(end, t.maxMs);
    sock.on('error', () => (verdict = 'reset'));
    sock.on('data', () => undefined);
    sock.on('end', () => {
      verdict = timed ? `closed after ~${Math.round((Date.now() - t0) / 10_000) * 10} s` : 'closed';
    });
    sock.on('close', () => {
      end();
      resolve(verdict);
    });
  });
}

/**
 * A byte a second of a LOGIN line, before login: silence never lasts long enough for the
 * idle timer, so only a deadline on the whole login (limits.ts loginDeadlineMs) ends it.
 */
function slow(t: HostileTarget): Promise<string> {
  const line = `a1 LOGIN ${t.account.user} ${'x'.repeat(200)}\r\n`;
  return raw(t, (w, i) => (w(line[i % line.length]!), true), 1000, true);
}

/** Binary junk lines as fast as the socket takes them: maxBadCommands. */
function garbage(t: HostileTarget): Promise<string> {
  const junk = `${Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 37 + 11) % 256)).toString('latin1')}\r\n`;
  return raw(t, (w, i) => (w(junk), i < 2000), 5);
}

/** A line that never ends: maxLineBytes. */
function longLine(t: HostileTarget): Promise<string> {
  const chunk = `a1 LOGIN ${'A'.repeat(16 * 1024)}`;
  return raw(t, (w, i) => (w(chunk), i < 512), 5);
}

/**
 * Zero-length non-synchronizing literals (RFC 7888) without end, 20,000 to a write: one
 * command that never finishes, which a parser must bound without recursing per literal.
 */
function literalFlood(t: HostileTarget): Promise<string> {
  const lines = '{0+}\r\n'.repeat(20_000);
  return raw(t, (w, i) => (w(i === 0 ? `a1 LOGIN {0+}\r\n${lines}` : lines), i < 32), 20);
}

/**
 * One scripted TLS client session on `port`: `script`'s answer, or `failed` when the
 * gateway refused or closed it on the way; the socket is closed on every path.
 */
async function scripted(
  t: HostileTarget,
  port: number,
  failed: string,
  script: (w: Wire) => Promise<string>,
): Promise<string> {
  let w: Wire | undefined;
  try {
    w = await Wire.open({ port, localAddress: t.localAddress, ca: t.ca, timeoutMs: t.maxMs });
    return await script(w);
  } catch {
    return failed;
  } finally {
    w?.close();
  }
}

/** Wrong passwords, one after another on one connection: the failure brakes. */
function wrongPassword(t: HostileTarget): Promise<string> {
  return scripted(t, t.imap, 'closed', async (w) => {
    await w.until(/^\* OK/, /^\* BYE/);
    await w.cmd('starttls', 'a1 STARTTLS', /^a1 OK/, /^a1 (NO|BAD)/);
    await w.startTls();
    for (let i = 0; i < 5; i++) {
      const r = await w.cmd('login', `b${i} LOGIN ${t.victim} wrong-${i}`, /^b\d+ /);
      if (/^b\d+ OK/.test(r.at(-1)!)) return 'ACCEPTED';
    }
    return 'survived';
  });
}

/** A LOGIN whose synchronizing literal is announced, half sent, and the connection cut. */
function cutLoginLiteral(t: HostileTarget): Promise<string> {
  return scripted(t, t.imap, 'refused', async (w) => {
    await w.until(/^\* OK/, /^\* BYE/);
    await w.cmd('literal', `a1 LOGIN ${t.account.user} {64}`, /^\+ /, /^a1 /);
    w.write('x'.repeat(20));
    return 'cut';
  });
}

/** Logged in (so spliced to a backend), an APPEND literal half sent, then cut. */
function cutAppendLiteral(t: HostileTarget): Promise<string> {
  return scripted(t, t.imap, 'refused', async (w) => {
    await imapLogin(w, t.account, performance.now(), true);
    const msg = smallMessage(t.account.user, t.account.user, 0);
    await w.cmd('literal', `a3 APPEND INBOX {${msg.length}}`, /^\+ /, /^a3 /);
    w.write(msg.slice(0, msg.length >> 1));
    return 'cut';
  });
}

/** Authenticated submission, half a message in DATA, then cut: nothing may be relayed. */
function cutData(t: HostileTarget): Promise<string> {
  const bad = /^[45]\d\d/;
  return scripted(t, t.submission, 'refused', async (w) => {
    await w.until(/^220 /, bad);
    await w.cmd('ehlo', 'EHLO hostile.test', /^250 /, bad);
    await w.cmd('starttls', 'STARTTLS', /^220 /, bad);
    await w.startTls();
    await w.cmd('ehlo', 'EHLO hostile.test', /^250 /, bad);
    const plain = Buffer.from(`\0${t.account.user}\0${t.account.password}`).toString('base64');
    await w.cmd('auth', `AUTH PLAIN ${plain}`, /^235 /, bad);
    await w.cmd('mail', `MAIL FROM:<${t.account.user}>`, /^250 /, bad);
    await w.cmd('rcpt', `RCPT TO:<${t.account.user}>`, /^250 /, bad);
    await w.cmd('data', 'DATA', /^354 /, bad);
    const msg = smallMessage(t.account.user, t.account.user, 0);
    w.write(msg.slice(0, msg.length >> 1));
    return 'cut';
  });
}

const ATTACKS: Record<HostileKind, (t: HostileTarget) => Promise<string>> = {
  slow,
  garbage,
  'long-line': longLine,
  'literal-flood': literalFlood,
  'wrong-password': wrongPassword,
  'cut-login-literal': cutLoginLiteral,
  'cut-append-literal': cutAppendLiteral,
  'cut-data': cutData,
};

export function runHostile(kind: HostileKind, t: HostileTarget): Promise<string> {
  return ATTACKS[kind](t).catch(() => 'error');
}
