/**
 * At copy time: read the source's and the destination's POP3 maildrop (LIST, UIDL and
 * TOP n 0 of each message), pair the messages (match.ts) and keep destination UIDL ->
 * source UIDL in the account's side file, so the gateway can show a POP3 client that
 * leaves mail on the server the UIDLs it already knows (RFC 1939 7) and the client does
 * not download the inbox again.
 *
 * Both sides are read over POP3 rather than mapped through IMAP UIDs: the destination's
 * own UIDL is whatever its pop3_uidl_format makes of a message, and reading it is the
 * one way that does not depend on that setting. Nothing is changed on either server (no
 * DELE; a QUIT without DELE removes nothing, RFC 1939 6).
 */
import type { Config } from '../../config/types.js';
import type { StateStore } from '../../state/types.js';
import { endpointOptions } from '../pop3/connect.js';
import { Pop3Client, type Pop3ConnectOptions } from '../pop3/pop3-client.js';
import { headerHash } from './header-hash.js';
import { matchUidls, type Pop3Message } from './match.js';
import { saveUidls } from './store.js';

/** TOP commands ahead of their replies: a 100k-message maildrop is not 100k round trips */
const PIPELINE = 32;

export interface UidlRecordResult {
  matched: number;
  ambiguous: number;
  unmatched: number;
  /** UIDLs the gateway will rewrite */
  rewritten: number;
}

type HasSide = Pick<StateStore, 'side'>;

/** Both sides speak POP3: there are UIDLs to keep. */
export function recordsUidls(config: Config): boolean {
  return config.source.pop3 !== undefined && config.destination.pop3 !== undefined;
}

/** Every message of a maildrop as (UIDL, size, header hash). */
export async function readMaildrop(opts: Pop3ConnectOptions): Promise<Pop3Message[]> {
  const c = await Pop3Client.connect(opts);
  try {
    const window = (await c.capa()).has('PIPELINING') ? PIPELINE : 1;
    const sizes = await c.list();
    const uidls = await c.uidl();
    const numbers = [...uidls.keys()].filter((n) => sizes.has(n));
    const out: Pop3Message[] = [];
    for await (const [n, top] of c.headers(numbers, window)) {
      out.push({
        uidl: uidls.get(n) as string,
        size: sizes.get(n) as number,
        hash: headerHash(top),
      });
    }
    await c.quit();
    return out;
  } finally {
    c.close();
  }
}

export async function recordPop3Uidls(
  config: Config,
  store: HasSide,
  req: { address: string; password: string },
  now: Date = new Date(),
): Promise<UidlRecordResult | undefined> {
  const src = config.source.pop3;
  const dst = config.destination.pop3;
  if (!src || !dst) return undefined;
  const master = config.destination.master;
  const [source, destination] = await Promise.all([
    readMaildrop(endpointOptions(config, src, req.address, req.password)),
    readMaildrop(
      master
        ? endpointOptions(
            config,
            dst,
            `${req.address}${master.separator}${master.user}`,
            master.password,
          )
        : endpointOptions(config, dst, req.address, req.password),
    ),
  ]);
  const m = matchUidls(source, destination);
  await saveUidls(store, req.address.toLowerCase(), m, now);
  return {
    matched: m.matched,
    ambiguous: m.ambiguous,
    unmatched: m.unmatched,
    rewritten: m.pairs.length,
  };
}

/**
 * The step migrateAccount runs after a good copy. It never fails the run (the mail is
 * moved; only the UIDLs would be new): a failure and the ambiguous messages are reported.
 */
export async function keepPop3Uidls(
  config: Config,
  store: HasSide,
  req: { address: string; password: string },
  warn: (message: string) => void,
): Promise<UidlRecordResult | undefined> {
  if (!recordsUidls(config)) return undefined;
  try {
    const r = await recordPop3Uidls(config, store, req);
    if (r && r.ambiguous > 0)
      warn(
        `INBOX: ${r.ambiguous} messages match several messages by size and header; POP3 clients see their new UIDL and may download them again`,
      );
    return r;
  } catch (err) {
    warn(
      `POP3 UIDLs not recorded: ${(err as Error).message}; POP3 clients may download the inbox again`,
    );
    return undefined;
  }
}
