/**
 * `migrate --dry-run` (and `check --user`): what a run would do, without doing any of it.
 * Logs in to both sides, lists and plans the folders, counts messages and bytes per source
 * folder, and names the problems a run would hit (names the destination may refuse,
 * messages over its APPENDLIMIT), with an estimated time. Nothing is created, provisioned,
 * copied or written; the source is only EXAMINEd.
 */
import type { Config } from '../config/types.js';
import type { StateStore } from '../state/types.js';
import { openFlow, openSession, type SideAccess } from './copy/connect.js';
import { ImapError } from './copy/errors.js';
import type { SessionTimeouts } from './copy/session-types.js';
import { listMeta, openMailbox } from './copy/mailbox.js';
import { DEFAULT_FOLDER_OPS, destinationAccess, sides, type FolderOps } from './migrate-account.js';
import { copiesOverPop3 } from './pop3/connect.js';
import { dryRunOverPop3 } from './pop3/dry-run.js';
import type { PlanSide } from './folders/plan.js';
import type { FolderPlan } from './types.js';
import {
  DEFAULT_RATE,
  etaSeconds,
  overLimitProblem,
  type DryRunFolder,
  type DryRunRate,
  type DryRunResult,
} from './dry-run-result.js';

export type { DryRunFolder, DryRunResult } from './dry-run-result.js';

export interface DryRunDeps {
  config: Config;
  store?: StateStore;
  folders?: FolderOps;
  /** rate used for the estimate (default DEFAULT_RATE) */
  rate?: DryRunRate;
}

export async function dryRun(
  req: { address: string; password: string },
  deps: DryRunDeps,
): Promise<DryRunResult> {
  const { config } = deps;
  const timeouts: SessionTimeouts = {
    connectMs: config.timeouts.connectMs,
    greetingMs: config.timeouts.greetingMs,
    commandMs: config.timeouts.commandMs,
  };
  const ops = deps.folders ?? DEFAULT_FOLDER_OPS;
  const problems: string[] = [];
  if (copiesOverPop3(config)) {
    const dst = await readDestination(destinationAccess(config, req), timeouts, ops, problems);
    return dryRunOverPop3(req, {
      config,
      store: deps.store,
      rate: deps.rate ?? DEFAULT_RATE,
      destination: {
        appendLimit: dst.appendLimit,
        inboxExists: dst.dstSide.mailboxes.some((m) => m.path.toUpperCase() === 'INBOX'),
        problems,
      },
    });
  }
  const { source, destination } = sides(config, req);
  const srcFlow = await openFlow(source, timeouts);
  let srcSide: PlanSide;
  try {
    srcSide = await ops.list(srcFlow);
  } finally {
    await srcFlow.logout().catch(() => srcFlow.close());
  }
  const { dstSide, appendLimit } = await readDestination(destination, timeouts, ops, problems);
  const plan: FolderPlan = ops.plan(srcSide, dstSide);
  const record = await deps.store?.get(req.address);

  const src = await openSession(source, timeouts);
  const folders: DryRunFolder[] = [];
  try {
    for (const e of plan.entries) {
      const f: DryRunFolder = {
        source: e.source,
        destination: e.destination,
        noselect: e.noselect,
        specialUse: e.specialUse,
        existsOnDestination: e.existsOnDestination,
        messages: 0,
        bytes: 0,
        alreadyCopied: 0,
        overLimit: 0,
        problems: [...e.problems],
      };
      if (!e.noselect && !e.nonExistent) {
        const box = await openMailbox(src, e.source, { readOnly: true });
        f.messages = box.exists;
        if (box.exists > 0) {
          const list = await listMeta(src, '1:*', 'UID RFC822.SIZE');
          for (const m of list.messages) {
            f.bytes += m.size ?? 0;
            if (appendLimit !== undefined && (m.size ?? 0) > appendLimit) f.overLimit++;
          }
        }
        const prog = record?.folders[e.source];
        if (prog && prog.uidValidity === box.uidValidity)
          f.alreadyCopied = Math.min(prog.copied, f.messages);
        if (f.overLimit) f.problems.push(overLimitProblem(f.overLimit, appendLimit));
      }
      folders.push(f);
    }
  } finally {
    await src.close();
  }
  const rate = deps.rate ?? DEFAULT_RATE;
  const totals = { folders: folders.length, messages: 0, bytes: 0, toCopy: 0, toCopyBytes: 0 };
  for (const f of folders) {
    totals.messages += f.messages;
    totals.bytes += f.bytes;
    const left = Math.max(0, f.messages - f.alreadyCopied);
    totals.toCopy += left;
    totals.toCopyBytes += f.messages ? Math.round((f.bytes * left) / f.messages) : 0;
  }
  return {
    address: req.address,
    folders,
    skippedFolders: plan.skipped ?? [],
    totals,
    appendLimit,
    etaSeconds: etaSeconds(totals.toCopy, totals.toCopyBytes, rate),
    assumedRate: rate,
    problems,
  };
}

/** The destination as it is now; an account not provisioned yet looks empty. */
async function readDestination(
  destination: SideAccess,
  timeouts: SessionTimeouts,
  ops: FolderOps,
  problems: string[],
): Promise<{ dstSide: PlanSide; appendLimit?: number }> {
  try {
    const flow = await openFlow(destination, timeouts);
    try {
      const dstSide = await ops.list(flow);
      const cap = [...(flow.capabilities?.keys() ?? [])].find((c) => /^APPENDLIMIT=\d+$/i.test(c));
      return { dstSide, appendLimit: cap ? Number(cap.split('=')[1]) : undefined };
    } finally {
      await flow.logout().catch(() => flow.close());
    }
  } catch (err) {
    const auth =
      (err as { code?: string }).code === 'EAUTH' ||
      (err instanceof ImapError && err.code === 'EAUTH');
    if (!auth) throw err;
    problems.push(
      'cannot log in to the destination yet (the account is not provisioned); the plan assumes an empty destination with "/" as delimiter',
    );
    return { dstSide: { namespace: { prefix: '', delimiter: '/' }, mailboxes: [] } };
  }
}
