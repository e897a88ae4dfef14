/**
 * The copier's STARTTLS exchange (RFC 3501 6.2.1), read line by line by the transport, which
 * refuses any byte that came after the go-ahead (RFC 2595 4; Exim CVE-2021-38371) before the
 * handshake. The caller has stopped streaming and destroys the session if this throws.
 */
import type { Transport } from '../../net/transport.js';
import { ImapError } from './errors.js';

export async function startTlsExchange(
  transport: Transport,
  tag: string,
  label: string,
  commandMs: number,
): Promise<void> {
  transport.write(`${tag} STARTTLS\r\n`);
  const line = await transport.readLine(commandMs, 'the reply to STARTTLS', 'latin1');
  if (!line.startsWith(`${tag} `))
    throw new ImapError('ETLS', `${label} sent an untagged response during STARTTLS; giving up`);
  const status = /^\S+ (\S+) ?(.*)$/.exec(line);
  if (status?.[1]?.toUpperCase() !== 'OK')
    throw new ImapError('ETLS', `${label} refused STARTTLS: ${status?.[2] ?? line}`);
  await transport.startTls('STARTTLS');
}

/** The server does not offer STARTTLS: say what the operator can choose instead. */
export function noStartTls(label: string, url: string): ImapError {
  return new ImapError(
    'ETLS',
    `${label} ${url} does not offer STARTTLS; use imaps:// or tls=none on a private link`,
  );
}
