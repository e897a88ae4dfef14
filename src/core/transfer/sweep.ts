/**
 * A late-mail sweep of an account already switched to the destination: copy what reached
 * the source mailbox after the switch's final pass listed it (a message the source's MTA
 * accepted before the lock but delivered later: its queue, LMTP delays, a sieve filing it
 * into another folder).
 *
 * Nothing is locked (the destination serves the user), the account's state is not touched,
 * and only source UIDs above each folder's checkpoint are copied, UIDVALIDITY unchanged
 * (copy/folder-copy.ts newOnly): flag changes and expunges are not applied, and what the
 * user deleted on the destination stays deleted. The checkpoint maps every copy it makes,
 * so a sweep killed halfway and run again copies nothing twice.
 */
import { tryLogin } from './copy/connect.js';
import { copyPass } from './copy-pass.js';
import { openRun } from './migrate-account.js';
import type { MigrateDeps, MigrateRequest } from './migrate-deps.js';
import { copiesOverPop3 } from './pop3/connect.js';

export interface SweepResult {
  /** messages and bytes copied to the destination */
  messages: number;
  bytes: number;
  errors: string[];
}

export async function sweepAccount(req: MigrateRequest, deps: MigrateDeps): Promise<SweepResult> {
  // the POP3 fallback has no UIDs to compare: it is not swept (README, Limits)
  if (copiesOverPop3(deps.config)) return { messages: 0, bytes: 0, errors: [] };
  const run = { ...openRun(req, deps, true), lost: 'respect' as const, newOnly: true };
  if (!(await tryLogin(run.source, run.timeouts)))
    return { messages: 0, bytes: 0, errors: [`the source refused the password of ${req.address}`] };
  const pass = await copyPass(run);
  await deps.ledger.flush();
  // a folder that could not be swept at all is in pass.errors already
  const folderErrors = pass.folders
    .filter((f) => !f.error && f.failed > 0)
    .map((f) => `${f.source}: ${f.failed} messages not copied`);
  const result: SweepResult = {
    messages: pass.folders.reduce((n, f) => n + f.copied, 0),
    bytes: pass.folders.reduce((n, f) => n + f.copiedBytes, 0),
    errors: [...pass.errors, ...folderErrors],
  };
  if (result.messages > 0) await recordSwept(deps, run.address, result, run.now().toISOString());
  return result;
}

/** Added to the account's transfer summary; its state stays as it is. */
async function recordSwept(
  deps: MigrateDeps,
  address: string,
  r: SweepResult,
  at: string,
): Promise<void> {
  await deps.store.update(address, (rec) => {
    if (!rec.transfer) return;
    const before = rec.transfer.swept ?? { messages: 0, bytes: 0 };
    rec.transfer.swept = {
      at,
      messages: before.messages + r.messages,
      bytes: before.bytes + r.bytes,
    };
  });
}
