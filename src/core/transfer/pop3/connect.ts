/**
 * Reaching the source over POP3 for the copy engine: when the config says to copy over
 * POP3, the connect options for one account, and the failures an operator can fix
 * (wrong password, mailbox in use, TLS, unreachable) as OperatorErrors that say what to
 * try, apart from the ones worth a reconnect.
 */
import { isIP } from 'node:net';
import type { Endpoint } from '../../config/endpoint.js';
import type { Config } from '../../config/types.js';
import { OperatorError } from '../../errors.js';
import { NetError } from '../../net/errors.js';
import { isTransient } from '../copy/errors.js';
import { Pop3Client, Pop3Error, type Pop3ConnectOptions } from './pop3-client.js';

/** True when the config says to copy over POP3 instead of IMAP. */
export function copiesOverPop3(config: Config): boolean {
  return !config.source.useImap || !config.source.imap;
}

export function pop3Options(
  config: Config,
  req: { address: string; password: string },
): Pop3ConnectOptions {
  const ep = config.source.pop3;
  if (!ep) {
    throw new OperatorError(
      'the source has no IMAP to copy from (or source.useImap is false) and no POP3 either',
      'set source.imap, or source.pop3 (e.g. pop3://host:110?tls=starttls), in the config',
      'ECONFIG',
    );
  }
  return endpointOptions(config, ep, req.address, req.password);
}

/** Connect options for a POP3 endpoint of either side, as `user`. */
export function endpointOptions(
  config: Config,
  ep: Endpoint,
  user: string,
  password: string,
): Pop3ConnectOptions {
  return {
    host: ep.host,
    port: ep.port,
    tls: ep.tls,
    verify: ep.verify,
    // SNI carries host names only (RFC 6066 3); an IP is checked against the certificate as is
    servername: isIP(ep.servername) ? undefined : ep.servername,
    user,
    password,
    timeoutMs: Math.max(config.timeouts.connectMs, config.timeouts.commandMs),
  };
}

/** A logged-in POP3 session; failures the operator can fix become OperatorErrors. */
export async function connectPop3(opts: Pop3ConnectOptions): Promise<Pop3Client> {
  try {
    return await Pop3Client.connect(opts);
  } catch (err) {
    throw pop3OperatorError(err, opts);
  }
}

export function pop3OperatorError(err: unknown, opts: Pop3ConnectOptions): unknown {
  const where = `the source POP3 server ${opts.host}:${opts.port}`;
  if (err instanceof Pop3Error && err.authenticationFailed) {
    return new OperatorError(
      `the source refused the password of ${opts.user}`,
      'capture it again through the gateway, or pass the right one with --password-stdin',
      'EAUTH',
      { cause: err },
    );
  }
  if (err instanceof Pop3Error && err.response !== undefined) {
    return new OperatorError(
      `${where} did not let ${opts.user} in: ${err.message}`,
      'another POP3 client may hold the mailbox ([IN-USE]); try again in a few minutes',
      'ETEMPFAIL',
      { cause: err },
    );
  }
  const code = (err as { code?: string }).code ?? '';
  if (err instanceof NetError && (err.code === 'ETLS' || err.code === 'EINJECTION')) {
    return new OperatorError(
      `TLS with ${where} failed: ${(err as Error).message}`,
      "check source.pop3's tls= setting and the server's certificate (verify=false only on a private link)",
      'ETLS',
      { cause: err },
    );
  }
  if (code === 'ECONNECT' || code === 'ETIMEOUT' || isCut(err)) {
    return new OperatorError(
      `cannot reach ${where}: ${(err as Error).message}`,
      'start the source server or fix source.pop3 in the config',
      'ECONNREFUSED',
      { cause: err },
    );
  }
  return err;
}

/** The connection closed or stalled (no server reply to blame). */
function isCut(err: unknown): boolean {
  return err instanceof Pop3Error && err.response === undefined && !err.authenticationFailed;
}

/** Worth reconnecting and going on (the copy resumes from the recorded UIDLs). */
export function transientPop3(err: unknown): boolean {
  if (err instanceof OperatorError) return err.code === 'ETEMPFAIL' || isCut(err.cause);
  if (err instanceof Pop3Error)
    return isCut(err) || err.responseCode === 'SYS/TEMP' || err.responseCode === 'IN-USE';
  const code = (err as { code?: string } | null)?.code ?? '';
  return isTransient(err) || /^(NoConnection|EConnectionClosed|ETIMEOUT)$/.test(code);
}
