/**
 * Open logged-in connections to one side: lean ImapSessions for the copy's hot path, an
 * imapflow client for listing and creating folders. Login failures become OperatorErrors
 * that say what to try.
 */
import { ImapFlow } from 'imapflow';
import type { Endpoint } from '../../config/endpoint.js';
import { OperatorError } from '../../errors.js';
import { ImapError } from './errors.js';
import { ImapSession } from './imap-session.js';
import type { Credentials, SessionTimeouts } from './session-types.js';
import { login } from './login.js';
import { defaultSpill } from './spill.js';
import { DEFAULT_READER_LIMITS } from './wire.js';

export interface SideAccess {
  label: 'source' | 'destination';
  endpoint: Endpoint;
  credentials: Credentials;
}

export async function openSession(
  side: SideAccess,
  timeouts: SessionTimeouts,
  enable: string[] = [],
): Promise<ImapSession> {
  let s: ImapSession;
  try {
    s = await ImapSession.connect({
      endpoint: side.endpoint,
      timeouts,
      label: side.label,
      limits: { ...DEFAULT_READER_LIMITS, spill: defaultSpill() },
    });
  } catch (err) {
    throw connectError(side, err);
  }
  try {
    await login(s, side.credentials);
    if (enable.length) await s.enable(enable);
  } catch (err) {
    s.destroy();
    throw err instanceof ImapError && err.code === 'EAUTH' ? authError(side, err) : err;
  }
  return s;
}

/** A fresh login that only answers "does this password work yet" (after provisioning). */
export async function tryLogin(side: SideAccess, timeouts: SessionTimeouts): Promise<boolean> {
  const s = await ImapSession.connect({
    endpoint: side.endpoint,
    timeouts,
    label: side.label,
  }).catch((err: unknown) => {
    throw connectError(side, err);
  });
  try {
    await login(s, side.credentials);
    return true;
  } catch (err) {
    if (err instanceof ImapError && err.code === 'EAUTH') return false;
    throw err;
  } finally {
    await s.close();
  }
}

export async function openFlow(side: SideAccess, timeouts: SessionTimeouts): Promise<ImapFlow> {
  const ep = side.endpoint;
  const c = side.credentials;
  const auth = c.master
    ? { user: c.master.user, pass: c.master.password, authzid: c.user }
    : { user: c.user, pass: c.password };
  const client = new ImapFlow({
    host: ep.host,
    port: ep.port,
    secure: ep.tls === 'implicit',
    doSTARTTLS: ep.tls === 'starttls',
    tls: { rejectUnauthorized: ep.verify, servername: ep.servername },
    auth,
    logger: false,
    disableAutoIdle: true,
    connectionTimeout: timeouts.connectMs,
    greetingTimeout: timeouts.greetingMs,
    socketTimeout: Math.max(timeouts.commandMs, 60_000),
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    client.close(); // a connection that got as far as a refused login is still open
    const e = err as { authenticationFailed?: boolean; responseText?: string; message?: string };
    if (e.authenticationFailed) {
      throw authError(
        side,
        new ImapError('EAUTH', e.responseText ?? e.message ?? 'login refused', {
          serverText: e.responseText,
        }),
      );
    }
    throw connectError(side, err);
  }
  return client;
}

/**
 * Both sides at once; when one cannot be opened the other is closed before the error goes
 * on (a destination refusing every login must not leave a source connection per attempt).
 */
export async function openFlowPair(
  source: SideAccess,
  destination: SideAccess,
  timeouts: SessionTimeouts,
): Promise<[ImapFlow, ImapFlow]> {
  const [s, d] = await Promise.allSettled([
    openFlow(source, timeouts),
    openFlow(destination, timeouts),
  ]);
  if (s.status === 'fulfilled' && d.status === 'fulfilled') return [s.value, d.value];
  for (const r of [s, d]) if (r.status === 'fulfilled') r.value.close();
  throw s.status === 'rejected' ? s.reason : (d as PromiseRejectedResult).reason;
}

function connectError(side: SideAccess, err: unknown): unknown {
  if (!(err instanceof ImapError)) return err;
  if (err.code === 'ETLS') {
    return new OperatorError(
      err.message,
      `check ${side.label}.imap's tls= setting and the server's certificate (verify=false only on a private link)`,
      'ETLS',
      { cause: err },
    );
  }
  if (err.code === 'ECONNECT' || err.code === 'ETIMEOUT') {
    return new OperatorError(
      err.message,
      `start the ${side.label} server or fix ${side.label}.imap (${side.endpoint.url}) in the config`,
      'ECONNREFUSED',
      { cause: err },
    );
  }
  return err;
}

function authError(side: SideAccess, err: ImapError): OperatorError {
  const c = side.credentials;
  const hint =
    side.label === 'destination'
      ? c.master
        ? `check destination.master (user "${c.master.user}" and its password) and that the destination allows master logins (auth_master_user_separator)`
        : `check that the account was provisioned on the destination (destination.provision), or configure destination.master`
      : `the source refused this password: capture it again through the gateway, or pass the right one with --password-stdin`;
  return new OperatorError(err.message, hint, 'EAUTH', { cause: err });
}
