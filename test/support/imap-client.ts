/**
 * A logged-in imapflow client for a test Dovecot, as tests and loaders need it.
 */
import { ImapFlow } from 'imapflow';
import type { Credentials, DovecotInstance } from './dovecot.js';

export interface OpenImapOptions {
  /** 'none' (default): plain on the IMAP port; 'starttls'; 'implicit': the IMAPS port */
  tls?: 'none' | 'starttls' | 'implicit';
}

type ImapTarget = Pick<DovecotInstance, 'host' | 'ports' | 'tls' | 'name'>;

export async function openImap(
  inst: ImapTarget,
  creds: Credentials,
  opts: OpenImapOptions = {},
): Promise<ImapFlow> {
  const mode = opts.tls ?? 'none';
  if (mode !== 'none' && !inst.tls)
    throw new Error(`Dovecot "${inst.name}" was started without tls: true`);
  const port = mode === 'implicit' ? inst.ports.imaps : inst.ports.imap;
  if (port === undefined) throw new Error(`Dovecot "${inst.name}" has no IMAPS port`);
  const client = new ImapFlow({
    host: inst.host,
    port,
    secure: mode === 'implicit',
    doSTARTTLS: mode === 'starttls',
    tls: inst.tls ? { ca: inst.tls.ca } : undefined,
    auth: { user: creds.user, pass: creds.password },
    logger: false,
    disableAutoIdle: true,
  });
  // An 'error' event without a listener would crash the test process.
  client.on('error', () => {});
  await client.connect();
  return client;
}
