/**
 * Transfer benchmark (`npm run bench:transfer`): AutoPort's `migrate` against Dovecot's own
 * migration (dsync: `doveadm backup -R` from an imapc: source) and mbsync, on the same
 * corpus in the same run, each into its own fresh destination Dovecot.
 *
 *   scenario "one big account": ~5,000 mixed messages, ~270 MB, over four folders
 *   scenario "20 small accounts": 20 x 500 small messages, 4 accounts at a time
 *
 * Reports wall time, messages/s, MB/s and peak RSS (from /usr/bin/time -v) per tool, and
 * AutoPort's ratio to each; for AutoPort's one-account run also its lock (lockS: how long
 * the switch kept the account out of reach; the pre-copy before it locks nothing); then checks every destination against the source (hashes for
 * AutoPort and dsync; counts for mbsync, which rewrites each message with an X-TUID header).
 * Env: BENCH_MESSAGES (5000), BENCH_ACCOUNTS (20), BENCH_SMALL (500), BENCH_TOOLS
 * (autoport,dsync,mbsync), BENCH_TIMEOUT_S per run (600). Build first (the script does).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import {
  bulkCorpus,
  loadBulk,
  makeTempDir,
  removeDir,
  startDovecot,
  type Corpus,
  type DovecotInstance,
} from '../test/support/index.js';
import { readMailbox } from '../test/integration/migrate-support.js';
import { runAutoport, runDsync, runMbsync, type Account, type RunStats } from './transfer-tools.js';

const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 5000);
const ACCOUNTS = Number(process.env.BENCH_ACCOUNTS ?? 20);
const SMALL = Number(process.env.BENCH_SMALL ?? 500);
const TOOLS = (process.env.BENCH_TOOLS ?? 'autoport,dsync,mbsync').split(',');
const TIMEOUT_MS = Number(process.env.BENCH_TIMEOUT_S ?? 600) * 1000;
const CONCURRENCY = 4;
const master = { user: 'admin', password: 'bench-master' };

interface Scenario {
  name: string;
  accounts: Account[];
  corpora: Map<string, Corpus>;
  messages: number;
  bytes: number;
  concurrency: number;
}

function sizeOf(c: Corpus): { messages: number; bytes: number } {
  let messages = 0;
  let bytes = 0;
  for (const f of c.folders) {
    for (const m of f.messages) {
      messages++;
      bytes += m.raw.length;
    }
  }
  return { messages, bytes };
}

function scenarios(): Scenario[] {
  const big: Account = { user: 'big@example.org', password: 'big-secret' };
  const bigCorpus = bulkCorpus({
    count: MESSAGES,
    avgSize: 54_000,
    seed: 1,
    folders: ['INBOX', 'INBOX', 'Archive', 'Sent', 'lists/dev'],
  });
  // bulkCorpus spreads round robin over the list: INBOX twice = 40% of the mail
  bigCorpus.folders = mergeFolders(bigCorpus);
  const small: Account[] = Array.from({ length: ACCOUNTS }, (_, i) => ({
    user: `user${i}@example.org`,
    password: `pw-${i}`,
  }));
  const smallCorpora = new Map(
    small.map((a, i) => [
      a.user,
      bulkCorpus({ count: SMALL, avgSize: 4_000, seed: 100 + i, folders: ['INBOX', 'Archive'] }),
    ]),
  );
  const s1 = sizeOf(bigCorpus);
  const s2 = [...smallCorpora.values()]
    .map(sizeOf)
    .reduce((a, b) => ({ messages: a.messages + b.messages, bytes: a.bytes + b.bytes }));
  return [
    {
      name: `one account, ${s1.messages} msgs`,
      accounts: [big],
      corpora: new Map([[big.user, bigCorpus]]),
      ...s1,
      concurrency: 1,
    },
    {
      name: `${ACCOUNTS} accounts x ${SMALL} msgs`,
      accounts: small,
      corpora: smallCorpora,
      ...s2,
      concurrency: CONCURRENCY,
    },
  ];
}

function mergeFolders(c: Corpus): Corpus['folders'] {
  const byPath = new Map<string, Corpus['folders'][number]>();
  for (const f of c.folders) {
    const have = byPath.get(f.path);
    if (have) have.messages.push(...f.messages);
    else byPath.set(f.path, { ...f, messages: [...f.messages] });
  }
  return [...byPath.values()];
}

async function autoportConfig(
  src: DovecotInstance,
  dst: DovecotInstance,
  dir: string,
  accounts: Account[],
): Promise<string> {
  const { generateKeyFile, loadKeyring, seal } = await import('../src/core/state/crypto.js');
  const { openJsonStore } = await import('../src/core/state/json-store.js');
  writeFileSync(join(dir, 'master.pw'), master.password, { mode: 0o600 });
  const file = join(dir, 'autoport.yaml');
  writeFileSync(
    file,
    stringify({
      source: { imap: src.urls.imap },
      // accounts exist already (as for the other tools); AutoPort logs in as the master user
      destination: {
        imap: dst.urls.imap,
        provision: { kind: 'none' },
        master: { user: master.user, passwordFile: join(dir, 'master.pw') },
      },
      listen: { imap: '127.0.0.1:0' },
      domains: ['example.org'],
      state: join(dir, 'state.json'),
      keyFile: join(dir, 'autoport.key'),
      transfer: { connections: 4, concurrency: CONCURRENCY },
    }),
  );
  await generateKeyFile(join(dir, 'autoport.key'));
  const keyring = loadKeyring(join(dir, 'autoport.key'));
  const store = await openJsonStore(join(dir, 'state.json'));
  for (const a of accounts)
    await store.upsert(a.user, {
      state: 'captured',
      credentials: seal(keyring, a.password, a.user),
    });
  await store.close();
  return file;
}

async function verify(
  tool: string,
  src: DovecotInstance,
  dst: DovecotInstance,
  sc: Scenario,
): Promise<string> {
  let folders = 0;
  const problems: string[] = [];
  for (const a of sc.accounts) {
    for (const f of (sc.corpora.get(a.user) as Corpus).folders) {
      folders++;
      const [x, y] = await Promise.all([
        readMailbox(src, a, src.mailboxName(f.path)),
        readMailbox(dst, a, dst.mailboxName(f.path)),
      ]);
      if (x.length !== y.length) problems.push(`${a.user} ${f.path}: ${x.length} vs ${y.length}`);
      else if (
        tool !== 'mbsync' &&
        JSON.stringify(x.map((m) => m.sha256).sort()) !==
          JSON.stringify(y.map((m) => m.sha256).sort())
      )
        problems.push(`${a.user} ${f.path}: content differs`);
    }
  }
  return problems.length
    ? `${problems.length} problems: ${problems.slice(0, 3).join('; ')}`
    : `ok (${folders} folders${tool === 'mbsync' ? ', counts only' : ', hashes'})`;
}

async function main(): Promise<void> {
  const dir = makeTempDir('bench-transfer');
  const all = scenarios();
  const users = all.flatMap((s) => s.accounts);
  const src = await startDovecot({ name: 'bench-src', users });
  const rows: Record<string, unknown>[] = [];
  try {
    for (const sc of all)
      for (const a of sc.accounts) await loadBulk(src, a.user, sc.corpora.get(a.user) as Corpus);
    for (const sc of all) {
      const byTool = new Map<string, RunStats>();
      for (const tool of TOOLS) {
        const dst = await startDovecot({
          name: `bench-${tool}`,
          users: sc.accounts,
          master,
          scheme: 'PLAIN',
        });
        const tdir = join(dir, `${tool}-${all.indexOf(sc)}`);
        mkdirSync(tdir, { recursive: true });
        try {
          let stats: RunStats;
          if (tool === 'autoport')
            stats = await runAutoport(
              await autoportConfig(src, dst, tdir, sc.accounts),
              sc.accounts,
              sc.concurrency,
              TIMEOUT_MS,
            );
          else if (tool === 'dsync')
            stats = await runDsync(src, dst, sc.accounts, sc.concurrency, TIMEOUT_MS);
          else stats = await runMbsync(src, dst, sc.accounts, sc.concurrency, tdir, TIMEOUT_MS);
          byTool.set(tool, stats);
          const check = stats.failures.length
            ? `FAILED: ${stats.failures[0]}`
            : await verify(tool, src, dst, sc);
          const secs = stats.wallMs / 1000;
          rows.push({
            scenario: sc.name,
            tool,
            wallS: +secs.toFixed(2),
            msgPerS: Math.round(sc.messages / secs),
            mbPerS: +(sc.bytes / 1048576 / secs).toFixed(1),
            peakRssMb: Math.round(stats.maxRssKb / 1024),
            ...(stats.lockMs === undefined ? {} : { lockS: +(stats.lockMs / 1000).toFixed(2) }),
            verify: check,
          });
          process.stderr.write(`${sc.name} ${tool}: ${secs.toFixed(1)} s, ${check}\n`);
        } finally {
          await dst.stop();
        }
      }
      const ap = byTool.get('autoport');
      // speed ratio: how many times faster AutoPort was (above 1 = faster)
      for (const [tool, s] of byTool)
        if (ap && tool !== 'autoport')
          rows.push({
            scenario: sc.name,
            tool: `autoport vs ${tool}`,
            speedRatio: +(s.wallMs / ap.wallMs).toFixed(2),
          });
    }
  } finally {
    await src.stop();
    removeDir(dir);
  }
  console.table(rows);
  console.log(JSON.stringify({ bench: 'transfer', rows }));
}

await main();
