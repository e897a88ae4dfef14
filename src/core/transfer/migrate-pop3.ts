/**
 * The POP3 fallback of `migrateAccount` (issue 3, item 7): when the source has no IMAP, or
 * `source.useImap` is false, the source inbox is copied over POP3 into the destination
 * INBOX with pop3Copy. The steps around it are the IMAP path's: the password checked at
 * the source first (over POP3), provisioning, the destination login, the same events,
 * ledger, verify, AccountResult and account record.
 *
 * - Nothing changes on the source: pop3Copy never sends DELE (RFC 1939 6: a QUIT without
 *   DELE removes nothing).
 * - Each copied message's source UIDL is recorded in the account record with its
 *   destination UID (`pop3Uidls`) as soon as it is copied: a later run skips those UIDLs,
 *   and a run that crashed between APPEND and the record finds the message on the
 *   destination by size and SHA-256 instead of appending it twice.
 * - If the destination INBOX was recreated (its UIDVALIDITY changed, RFC 3501 2.3.1.1), the
 *   recorded UIDs mean nothing any more: every message is matched by content again.
 */
import { performance } from 'node:perf_hooks';
import { waitForLogin } from '../provision/wait.js';
import { openFlow, openSession, tryLogin, type SideAccess } from './copy/connect.js';
import { DEFAULT_TUNING } from './copy/folder-copy.js';
import { Backoff, sleep } from './copy/throttle.js';
import type { VerifyResult } from './copy/verify.js';
import {
  destinationAccess,
  timeoutsOf,
  type MigrateDeps,
  type MigrateRequest,
} from './migrate-deps.js';
import { record } from './migrate-record.js';
import { connectPop3, pop3Options, transientPop3 } from './pop3/connect.js';
import { keepPop3Uidls } from './uidl/record.js';
import { listInbox, readExpectations, type InboxListing } from './pop3/inbox.js';
import { pop3Copy } from './pop3/index.js';
import { verifyInbox } from './pop3/verify-inbox.js';
import { accountResult, passMoved, type AccountResult, type FolderSummary } from './result.js';
import {
  MAILBOX,
  POP3_PLAN,
  recordedUidls,
  saveProgress,
  summaryOf,
  type Run,
} from './pop3-run.js';

export async function migrateOverPop3(
  req: MigrateRequest,
  deps: MigrateDeps,
): Promise<AccountResult> {
  const now = deps.now ?? (() => new Date());
  const address = req.address.toLowerCase();
  const startedAt = now().toISOString();
  const run: Run = {
    deps,
    address,
    now,
    emit: (e) => deps.onEvent?.(e),
    pop: pop3Options(deps.config, req),
    destination: destinationAccess(deps.config, req),
    timeouts: timeoutsOf(deps.config),
    ledger: deps.ledger.forAccount(address),
    st: {
      copied: 0,
      copiedBytes: 0,
      matched: 0,
      failures: new Map(),
      notCopied: new Set(),
      expected: new Map(),
      source: new Map(),
      bytes: 0,
    },
  };
  const folders: FolderSummary[] = [];
  const errors: string[] = [];
  // no pre-copy over POP3 (no flags, no cheap delta): the lock spans the whole copy
  const lockedAt = performance.now();
  const finish = async (): Promise<AccountResult> => {
    const result = accountResult(address, startedAt, now().toISOString(), folders, [], errors);
    result.lock = {
      at: startedAt,
      ms: Math.round(performance.now() - lockedAt),
      passes: 0,
      ...passMoved(folders),
    };
    await record(deps.store, address, result, now);
    run.emit({ type: 'done', address, result });
    return result;
  };
  await deps.store.update(address, (rec) => {
    rec.state = 'transferring';
    rec.transferPhase = 'switching';
    rec.attempts = (rec.attempts ?? 0) + 1;
    rec.transfer = {
      ...(rec.transfer ?? { messages: 0, bytes: 0, copied: 0, skipped: 0, failed: 0 }),
      startedAt,
      finishedAt: undefined,
    };
  });
  try {
    await deps.onLocked?.();
    // the source must accept the password before it is written anywhere
    await (await connectPop3(run.pop)).quit();
    if (deps.provisioner && deps.provisioner.kind !== 'none') {
      run.emit({ type: 'phase', address, phase: 'provision' });
      await deps.provisioner.provision(address, req.password);
      const asUser: SideAccess = {
        ...run.destination,
        credentials: { user: req.address, password: req.password },
      };
      await waitForLogin(() => tryLogin(asUser, run.timeouts));
    }
    run.emit({ type: 'phase', address, phase: 'plan' });
    run.emit({ type: 'plan', address, plan: POP3_PLAN });
    run.emit({ type: 'phase', address, phase: 'copy' });
  } catch (err) {
    errors.push((err as Error).message);
    await finish();
    throw err;
  }

  let folder: FolderSummary;
  try {
    await copyWithRetry(run);
    const v = deps.verify === 'none' ? undefined : await verify(run);
    folder = summaryOf(run.st, v);
  } catch (err) {
    const message = (err as Error).message;
    errors.push(`${MAILBOX}: ${message}`);
    folder = { ...summaryOf(run.st, undefined), error: message };
  }
  folders.push(folder);
  await saveProgress(run);
  run.emit({ type: 'folder-done', address, folder });
  if (!folder.error)
    await keepPop3Uidls(deps.config, deps.store, req, (m) =>
      run.emit({ type: 'warning', address, message: m }),
    );
  const result = await finish();
  await deps.ledger.flush();
  return result;
}

async function copyWithRetry(run: Run): Promise<void> {
  const backoff = new Backoff();
  for (;;) {
    try {
      return await copyAttempt(run);
    } catch (err) {
      if (!transientPop3(err) || backoff.exhausted || run.deps.signal?.aborted) throw err;
      const wait = backoff.next();
      run.emit({
        type: 'warning',
        address: run.address,
        message: `${MAILBOX}: ${(err as Error).message}; retrying in ${wait} ms`,
      });
      await sleep(wait, run.deps.signal);
    }
  }
}

async function copyAttempt(run: Run): Promise<void> {
  const { st, deps, address } = run;
  const dst = await openFlow(run.destination, run.timeouts);
  try {
    const status = await dst.status(MAILBOX, { uidValidity: true });
    const recorded = await recordedUidls(run, status ? Number(status.uidValidity ?? 0) : 0);
    const pop = await connectPop3(run.pop);
    let listing: InboxListing;
    try {
      listing = await listInbox(pop);
    } catch (err) {
      pop.close();
      throw err;
    }
    st.source = listing.unique;
    st.bytes = 0;
    const left = { messages: 0, bytes: 0 };
    for (const [uidl, n] of listing.unique) {
      const size = listing.sizes.get(n) ?? 0;
      st.bytes += size;
      if (uidl in recorded || st.notCopied.has(uidl)) continue;
      left.messages++;
      left.bytes += size;
    }
    st.toCopy ??= left;
    const progress = (phase: 'scan' | 'copy' | 'done'): void =>
      run.emit({
        type: 'progress',
        address,
        progress: {
          folder: MAILBOX,
          phase,
          toCopy: st.toCopy?.messages ?? 0,
          toCopyBytes: st.toCopy?.bytes ?? 0,
          copied: st.copied + st.matched,
          copiedBytes: st.copiedBytes,
          skipped: 0,
          failed: st.failures.size,
        },
      });
    progress('scan');
    await pop3Copy({
      source: async () => pop,
      destination: dst,
      mailbox: MAILBOX,
      // a refused message is not tried again within one run; the next run tries it again
      copied: new Set([...Object.keys(recorded), ...st.notCopied]),
      recordedDestUids: new Set(Object.values(recorded).filter((u) => u > 0)),
      now: run.now,
      onCopied: async (uidl, destUid, sha256, size, info) => {
        await deps.store.update(address, (rec) => {
          // 0: the destination gave no APPENDUID (RFC 4315)
          (rec.pop3Uidls ??= {})[uidl] = destUid ?? 0;
        });
        run.ledger.record({
          folder: MAILBOX,
          uidValidity: 0,
          uid: info.n,
          uidl,
          outcome: info.matched ? 'matched' : 'copied',
          destUid,
          size,
          sha256,
        });
        if (info.matched) st.matched++;
        else {
          st.copied++;
          st.copiedBytes += size;
        }
        // a matched message's date is known only when its headers give it
        const date = info.matched && info.dateFrom === 'now' ? undefined : info.date;
        if (destUid) st.expected.set(destUid, { n: info.n, sha256, size, date });
        progress('copy');
        if (deps.signal?.aborted) throw deps.signal.reason;
      },
      onFailed: (uidl, reason, n) => {
        const key = `${n} ${uidl}`;
        if (st.failures.has(key)) return;
        st.failures.set(key, { uidl, reason });
        // of several messages sharing a UIDL the first is copied; only the others fail
        if (st.source.get(uidl) === n) st.notCopied.add(uidl);
        run.ledger.record({
          folder: MAILBOX,
          uidValidity: 0,
          uid: n,
          uidl,
          outcome: 'failed',
          reason,
        });
        progress('copy');
      },
    });
    progress('done');
  } finally {
    await dst.logout().catch(() => dst.close());
  }
}

async function verify(run: Run): Promise<VerifyResult> {
  const { st } = run;
  const recorded = (await run.deps.store.get(run.address))?.pop3Uidls ?? {};
  if (run.deps.verify === 'all') {
    // the messages earlier runs copied are read from the source again to be compared
    const pop = await connectPop3(run.pop);
    try {
      await readExpectations(pop, recorded, st.expected, run.now);
    } finally {
      await pop.quit().catch(() => pop.close());
    }
  }
  const dst = await openSession(run.destination, run.timeouts);
  try {
    return await verifyInbox(dst, {
      mailbox: MAILBOX,
      source: st.source,
      recorded,
      failed: st.notCopied,
      expected: st.expected,
      maxQueueBytes: DEFAULT_TUNING.maxQueueBytes,
    });
  } finally {
    await dst.close();
  }
}
