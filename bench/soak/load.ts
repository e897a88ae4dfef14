/**
 * The soak's two load phases. `runLoad`: well-behaved sessions launched at a steady rate
 * (with a cap on how many are in flight), a baseline share of the same sessions straight
 * to the servers, and hostile clients mixed in, until the count is reached or the time is
 * up. `holdIdle`: thousands of logged-in IMAP sessions in IDLE, held, then each asked to
 * finish. Every loop is bounded in count and in time.
 */
import { openIdle, runSession, type Account, type Kind, KINDS } from './clients.js';
import { HOSTILE_KINDS, runHostile, type HostileKind } from './hostile.js';
import type { Tally } from './tally.js';

export interface LoadPlan {
  sessions: number;
  seconds: number;
  /** in-flight cap for well-behaved sessions */
  concurrency: number;
  hostilePct: number;
  hostileKinds: HostileKind[];
  baselinePct: number;
  firstLoginPct: number;
  /** share of IMAP/POP3 sessions by a migrated account */
  migratedShare: number;
  timeoutMs: number;
}

export interface LoadPorts {
  gateway: Record<Kind, number>;
  direct: Record<Kind, number>;
}

export interface LoadAccounts {
  captured: Account[];
  migrated: Account[];
  firstLogin: Account[];
  victims: string[];
}

/** Session mix: IMAP STARTTLS, IMAPS, POP3 STLS, submission. */
const WEIGHTS: Record<Kind, number> = {
  'imap-starttls': 0.35,
  imaps: 0.25,
  'pop3-stls': 0.2,
  submission: 0.2,
};

function pickKind(): Kind {
  let r = Math.random();
  for (const k of KINDS) if ((r -= WEIGHTS[k]) < 0) return k;
  return 'imap-starttls';
}

const pick = <T>(xs: T[]): T => xs[Math.floor(Math.random() * xs.length)]!;

export const GOOD_ADDRESSES = Array.from({ length: 10 }, (_, i) => `127.0.0.${i + 2}`);
export const HOSTILE_ADDRESSES = ['127.0.0.12', '127.0.0.13', '127.0.0.14', '127.0.0.15'];

export interface LoadResult {
  launched: number;
  /** until the last well-behaved session ended */
  seconds: number;
  stoppedBecause?: string;
  /** hostile clients still running: they go on into the idle phase; await before the end figures */
  hostileDone: Promise<void>;
  hostile: Map<string, number>;
}

export async function runLoad(
  plan: LoadPlan,
  ports: LoadPorts,
  acc: LoadAccounts,
  ca: string,
  tally: { gateway: Tally; direct: Tally },
  abort: () => string | undefined,
  progress: (done: number) => void,
): Promise<LoadResult> {
  const rate = plan.sessions / plan.seconds;
  const hardEnd = Date.now() + plan.seconds * 1500 + 60_000;
  const t0 = performance.now();
  const firstLogins = [...acc.firstLogin];
  const hostile = new Map<string, number>();
  const inflight = new Set<Promise<void>>();
  const hostileRunning = new Set<Promise<void>>();
  let launched = 0;
  let hostileLaunched = 0;
  let hostileInFlight = 0;
  let baselineLaunched = 0;
  let done = 0;
  let goodInFlight = 0;
  let n = 0;
  const track = (p: Promise<void>): void => {
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
  };

  const good = (i: number): Promise<void> => {
    const kind = pickKind();
    const addr = GOOD_ADDRESSES[i % GOOD_ADDRESSES.length]!;
    let a: Account;
    let label = 'captured';
    if (firstLogins.length > 0 && Math.random() * 100 < plan.firstLoginPct) {
      a = firstLogins.pop()!;
      label = 'first-login';
    } else if (kind !== 'submission' && Math.random() < plan.migratedShare) {
      a = pick(acc.migrated);
      label = 'migrated';
    } else a = pick(acc.captured);
    const target = { port: ports.gateway[kind], localAddress: addr, ca, timeoutMs: plan.timeoutMs };
    return runSession(kind, target, a, pick(acc.captured).user, n++).then(
      (r) => {
        // latencies only for captured accounts: the same backend and work as the baseline
        tally.gateway.pass(kind, label === 'captured' ? r.loginMs : undefined);
        if (label === 'first-login') acc.captured.push(a);
      },
      (err) => tally.gateway.fail(`${kind} (${label})`, err),
    );
  };

  const baseline = (i: number): Promise<void> => {
    const kind = KINDS[i % KINDS.length]!;
    const target = {
      port: ports.direct[kind],
      localAddress: GOOD_ADDRESSES[i % GOOD_ADDRESSES.length]!,
      ca,
      timeoutMs: plan.timeoutMs,
    };
    return runSession(kind, target, pick(acc.captured), pick(acc.captured).user, n++).then(
      (r) => tally.direct.pass(kind, r.loginMs),
      (err) => tally.direct.fail(kind, err),
    );
  };

  const attack = (i: number): Promise<void> => {
    const kind = plan.hostileKinds[i % plan.hostileKinds.length]!;
    hostileInFlight++;
    return runHostile(kind, {
      imap: ports.gateway['imap-starttls'],
      submission: ports.gateway.submission,
      localAddress: HOSTILE_ADDRESSES[i % HOSTILE_ADDRESSES.length]!,
      ca,
      account: pick(acc.captured),
      victim: pick(acc.victims),
      // longer than the gateway's login deadline (3 min): a slow sender shows whether
      // anything but silence ends a login that never completes
      maxMs: kind === 'slow' ? 200_000 : 30_000,
    }).then((verdict) => {
      hostileInFlight--;
      const key = `${kind}: ${verdict}`;
      hostile.set(key, (hostile.get(key) ?? 0) + 1);
    });
  };

  let stoppedBecause: string | undefined;
  while (launched < plan.sessions) {
    const why = abort();
    if (why) {
      stoppedBecause = why;
      break;
    }
    if (Date.now() > hardEnd) {
      stoppedBecause = `time is up after ${launched} of ${plan.sessions} sessions`;
      break;
    }
    const elapsed = (performance.now() - t0) / 1000;
    const due = Math.min(plan.sessions, Math.floor(elapsed * rate) + 1);
    while (launched < due && goodInFlight < plan.concurrency) {
      goodInFlight++;
      track(
        good(launched++).finally(() => {
          goodInFlight--;
          progress(++done);
        }),
      );
    }
    const hostileDue = Math.floor((launched * plan.hostilePct) / 100);
    while (plan.hostileKinds.length > 0 && hostileLaunched < hostileDue && hostileInFlight < 40) {
      const p = attack(hostileLaunched++);
      hostileRunning.add(p);
      void p.finally(() => hostileRunning.delete(p));
    }
    const baselineDue = Math.floor((launched * plan.baselinePct) / 100);
    while (baselineLaunched < baselineDue) track(baseline(baselineLaunched++));
    await new Promise((r) => setTimeout(r, 20));
  }
  // every session has its own timeout, so this ends
  await Promise.all([...inflight]);
  return {
    launched,
    seconds: (performance.now() - t0) / 1000,
    hostileDone: Promise.all([...hostileRunning]).then(() => undefined),
    stoppedBecause,
    hostile,
  };
}

export const ALL_HOSTILE = HOSTILE_KINDS;

/**
 * Open `count` IDLE sessions (STARTTLS and 993 alternately, spread over the addresses
 * and accounts), in two steps: a fifth, then `mark` is called, then the rest, then `held`.
 * Memory per session is taken between the two calls, so the collection of the load
 * phase's garbage, which lands in the first step, does not count against it.
 * Then wait `holdS` and finish each session.
 */
export async function holdIdle(
  count: number,
  holdS: number,
  ports: { imap: number; imaps: number },
  accounts: Account[],
  ca: string,
  mark: (opened: number) => Promise<void>,
  held: (opened: number) => Promise<void>,
  tally: Tally,
): Promise<{ opened: number; served: number; openSeconds: number }> {
  const sessions: Array<{ kind: string; s: Awaited<ReturnType<typeof openIdle>> }> = [];
  const t0 = performance.now();
  const deadline = Date.now() + 10 * 60_000;
  let next = 0;
  const opener = async (upTo: number): Promise<void> => {
    while (next < upTo && Date.now() < deadline) {
      const i = next++;
      const implicit = i % 2 === 1;
      const kind = implicit ? 'idle-imaps' : 'idle-imap-starttls';
      try {
        const s = await openIdle(
          {
            port: implicit ? ports.imaps : ports.imap,
            localAddress: GOOD_ADDRESSES[i % GOOD_ADDRESSES.length]!,
            ca,
            timeoutMs: 15 * 60_000,
          },
          accounts[i % accounts.length]!,
          implicit,
        );
        sessions.push({ kind, s });
      } catch (err) {
        tally.fail(kind, err);
      }
    }
  };
  await Promise.all(Array.from({ length: 32 }, () => opener(Math.ceil(count / 5))));
  await mark(sessions.length);
  await Promise.all(Array.from({ length: 32 }, () => opener(count)));
  const openSeconds = (performance.now() - t0) / 1000;
  await held(sessions.length);
  await new Promise((r) => setTimeout(r, holdS * 1000));
  let served = 0;
  await Promise.all(
    sessions.map(({ kind, s }) =>
      s.finish().then(
        () => {
          served++;
          tally.pass(kind);
        },
        (err) => tally.fail(kind, err),
      ),
    ),
  );
  return { opened: sessions.length, served, openSeconds };
}
