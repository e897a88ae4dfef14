/**
 * Benchmark of the SMTP gateway on port 25: messages per second accepted through the
 * gateway (client -> gateway -> the source's Postfix -> Dovecot LMTP) against the same
 * clients talking to the source's Postfix directly, in the same run, with 20 concurrent
 * senders each on one connection, for 10 KB and 1 MB messages. The goal is >= 0.8 of
 * direct. Prints a table and one JSON line; run with `npm run bench:smtp`.
 *
 * The senders run in a child process so they do not share the gateway's event loop, and
 * each run starts with the source's Postfix queue empty (no delivery backlog).
 * Env: BENCH_SENDERS (20), BENCH_SMALL (messages of 10 KB, default 2000),
 * BENCH_LARGE (messages of 1 MB, default 200), BENCH_ROUNDS (2: the better round counts).
 */
import { execFile } from 'node:child_process';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import nodemailer from 'nodemailer';
import { EventBus } from '../src/core/bus.js';
import { parseEndpoint } from '../src/core/config/endpoint.js';
import type { Config } from '../src/core/config/types.js';
import { openRelayLog, startSmtpListener } from '../src/core/smtp/index.js';
import { silentLogger } from '../src/core/log/index.js';
import { openJsonStore } from '../src/core/state/index.js';
import { makeTempDir, removeDir, startLab } from '../test/support/index.js';

const run = promisify(execFile);
const SENDERS = Number(process.env.BENCH_SENDERS ?? 20);
const SMALL = Number(process.env.BENCH_SMALL ?? 2000);
const LARGE = Number(process.env.BENCH_LARGE ?? 200);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const DOMAIN = 'example.org';

function message(size: number, n: number, to: string): Buffer {
  const head = `From: <bench@remote.test>\r\nTo: <${to}>\r\nSubject: bench ${n}\r\nMessage-ID: <bench-${n}-${Date.now()}@remote.test>\r\n\r\n`;
  const line = `${'0123456789abcdefghijklmnopqrstuvwxyz'.repeat(2)}\r\n`;
  const body = line.repeat(Math.ceil((size - head.length) / line.length));
  return Buffer.from(head + body.slice(0, Math.max(0, size - head.length)));
}

/** Child process: SENDERS connections, `count` messages of `size` bytes; prints {ms, ok, failed}. */
async function load(port: number, count: number, size: number): Promise<void> {
  let next = 0;
  let ok = 0;
  let failed = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: SENDERS }, async (_, s) => {
      const t = nodemailer.createTransport({
        host: '127.0.0.1',
        port,
        secure: false,
        ignoreTLS: true,
        pool: true,
        maxConnections: 1,
        maxMessages: Infinity,
      });
      const to = `user${s}@${DOMAIN}`;
      for (;;) {
        const n = next++;
        if (n >= count) break;
        try {
          await t.sendMail({
            envelope: { from: 'bench@remote.test', to: [to] },
            raw: message(size, n, to),
          });
          ok++;
        } catch {
          failed++;
        }
      }
      t.close();
    }),
  );
  process.stdout.write(`${JSON.stringify({ ms: performance.now() - started, ok, failed })}\n`);
}

interface Result {
  ms: number;
  ok: number;
  failed: number;
}

async function measure(port: number, count: number, size: number): Promise<Result> {
  const self = fileURLToPath(import.meta.url);
  const { stdout } = await run(
    process.execPath,
    ['--import', 'tsx', self, '--load', String(port), String(count), String(size)],
    {
      maxBuffer: 1 << 20,
    },
  );
  return JSON.parse(stdout.trim().split('\n').pop()!) as Result;
}

/**
 * Wait until the source's Postfix has delivered everything to Dovecot, so a run does not
 * compete with the delivery backlog of the run before it.
 */
async function drainQueue(etcDir: string, maxMs = 120_000): Promise<void> {
  const deadline = Date.now() + maxMs;
  while (Date.now() < deadline) {
    const { stdout } = await run('postqueue', ['-c', etcDir, '-j']).catch(() => ({ stdout: '' }));
    if (stdout.trim() === '') return;
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function main(): Promise<void> {
  const users = Array.from({ length: SENDERS }, (_, i) => ({
    user: `user${i}@${DOMAIN}`,
    password: `pw${i}`,
  }));
  const lab = await startLab({ users });
  const dir = makeTempDir('bench-smtp');
  const config: Config = {
    file: join(dir, 'autoport.yaml'),
    source: {
      useImap: true,
      imap: parseEndpoint(lab.source.urls.imap),
      smtp: parseEndpoint(lab.mta.url),
    },
    destination: {
      imap: parseEndpoint(lab.destination.urls.imap),
      smtp: parseEndpoint(lab.destination.urls.lmtp),
      provision: { kind: 'none' },
    },
    listen: { smtp: { host: '127.0.0.1', port: 0 } },
    domains: [DOMAIN],
    strategy: 'proxy',
    state: join(dir, 'state.json'),
    stateDir: dir,
    keyFile: join(dir, 'autoport.key'),
    logDir: join(dir, 'log'),
    transfer: { connections: 2, concurrency: 2 },
    timeouts: { connectMs: 5000, greetingMs: 10_000, commandMs: 60_000, idleMs: 300_000 },
  };
  const store = await openJsonStore(config.state);
  for (const u of users) await store.upsert(u.user, { state: 'captured' });
  const relayLog = await openRelayLog(config.logDir);
  const gw = await startSmtpListener('smtp', config.listen.smtp!, {
    config: () => config,
    store,
    relayLog,
    bus: new EventBus(),
    logger: silentLogger,
    hostname: 'gateway.bench',
    limits: { maxMessageBytes: 64 * 1024 * 1024 },
  });
  const loadBefore = loadavg()[0]!;
  const rows: Array<{
    size: string;
    direct: number;
    gateway: number;
    ratio: number;
    gatewayCpuMsPerMessage: number;
    failed: number;
  }> = [];
  try {
    for (const [label, size, count] of [
      ['10 KB', 10 * 1024, SMALL],
      ['1 MB', 1024 * 1024, LARGE],
    ] as const) {
      let direct = 0;
      let through = 0;
      let failed = 0;
      let cpuPerMsg = Infinity;
      for (let round = 0; round < ROUNDS; round++) {
        // Alternate the order so neither side always meets a warmer (or fuller) Postfix.
        const order =
          round % 2 === 0 ? (['direct', 'gateway'] as const) : (['gateway', 'direct'] as const);
        for (const which of order) {
          await drainQueue(join(lab.mta.dir, 'etc'));
          const cpu = process.cpuUsage();
          const r = await measure(which === 'direct' ? lab.mta.port : gw.address.port, count, size);
          const used = process.cpuUsage(cpu);
          if (which === 'gateway')
            cpuPerMsg = Math.min(cpuPerMsg, (used.user + used.system) / 1000 / Math.max(1, r.ok));
          failed += r.failed;
          const rate = (r.ok / r.ms) * 1000;
          if (which === 'direct') direct = Math.max(direct, rate);
          else through = Math.max(through, rate);
        }
      }
      rows.push({
        size: label,
        direct,
        gateway: through,
        ratio: through / direct,
        gatewayCpuMsPerMessage: cpuPerMsg,
        failed,
      });
    }
  } finally {
    await gw.close(0);
    await relayLog.close();
    await store.close();
    await lab.stop();
    removeDir(dir);
  }
  const loadAfter = loadavg()[0]!;
  console.log(
    `SMTP port 25, ${SENDERS} concurrent senders, best of ${ROUNDS} rounds (messages/s accepted)`,
  );
  console.log(
    `load average ${loadBefore.toFixed(1)} before, ${loadAfter.toFixed(1)} after: figures from a busy machine are not comparable`,
  );
  console.log('size    direct   gateway  ratio  gateway CPU ms/msg');
  for (const r of rows) {
    console.log(
      `${r.size.padEnd(7)} ${r.direct.toFixed(1).padStart(7)}  ${r.gateway.toFixed(1).padStart(7)}  ${r.ratio.toFixed(2)}  ${r.gatewayCpuMsPerMessage.toFixed(2).padStart(6)}${r.failed ? `  (${r.failed} failed)` : ''}`,
    );
  }
  console.log(
    JSON.stringify({
      bench: 'smtp',
      senders: SENDERS,
      small: SMALL,
      large: LARGE,
      rounds: ROUNDS,
      load: [loadBefore, loadAfter],
      results: rows,
    }),
  );
}

const i = process.argv.indexOf('--load');
if (i >= 0)
  await load(Number(process.argv[i + 1]), Number(process.argv[i + 2]), Number(process.argv[i + 3]));
else await main();
