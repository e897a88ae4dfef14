/**
 * `npm run demo`: AutoPort's main job end to end on this machine, in under two minutes.
 *
 * A local source (Dovecot + Postfix) and an empty destination come from the test harness
 * (test/support/lab.ts); the real `autoport proxy` runs against them as a child process,
 * exactly as an operator would start it. Real clients then play a short day of migration:
 * users log in through the gateway (their first login is captured and proxied to the
 * source), mail arrives over SMTP, the worker pool moves the quiet accounts, and the next
 * login is served by the destination. At the end the reports show what still depends on
 * the source (carol never logged in; team@ only receives mail).
 *
 * Exit 0 on success; 1 with a message naming the failed step otherwise. AUTOPORT_KEEP_TMP=1
 * keeps the lab dir (config, state, logs, Maildirs) for a look afterwards.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { ImapFlow } from 'imapflow';
import { createTransport } from 'nodemailer';
import { parse } from 'yaml';
import { generateKeyFile } from '../src/core/state/crypto.js';
import { Pop3Client } from '../src/core/transfer/pop3/pop3-client.js';
import {
  freePorts,
  keepTemp,
  loadCorpus,
  onProcessExit,
  standardCorpus,
  startLab,
  writeLabConfig,
  type Lab,
} from '../test/support/index.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const RUN = join(ROOT, 'bin/run.js');
const HOST = '127.0.0.1';
const TOTAL_MS = 110_000; // the whole demo, set-up and clean-up included
const MIGRATE_MS = 60_000;
const run = promisify(execFile);

let step = 0;
const say = (text: string): void => console.log(`[${++step}] ${text}`);
const note = (text: string): void => console.log(`    ${text}`);

let lab: Lab | undefined;
let gateway: ChildProcess | undefined;
let gatewayExit: Promise<number | null> | undefined;

/** The CLI as the operator would call it; stdout returned, a non-zero exit is an error. */
async function autoport(args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [RUN, ...args], {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: '1' },
    maxBuffer: 8 << 20,
  });
  return stdout;
}

/**
 * Start `autoport proxy` and wait for its "listening" line. Its log goes to a file so the
 * narration stays readable; the last lines are shown if it dies.
 */
async function startGateway(configFile: string, logFile: string): Promise<void> {
  const child = spawn(
    process.execPath,
    [RUN, 'proxy', '-c', configFile, '--log-format', 'human', '--grace', '2'],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } },
  );
  gateway = child;
  gatewayExit = new Promise((r) => child.on('exit', (code) => r(code)));
  // Ctrl-C or a kill of the demo alone must not leave the gateway running on its own; the
  // harness runs this before it removes the lab dir (cleanups run newest first).
  const unregister = onProcessExit(() => void (child.exitCode === null && child.kill('SIGKILL')));
  child.on('exit', unregister);
  const log = createWriteStream(logFile);
  let seen = '';
  const ready = new Promise<void>((res, rej) => {
    const onData = (d: Buffer): void => {
      log.write(d);
      seen = (seen + d.toString('utf8')).slice(-4000);
      if (/autoport proxy listening/.test(seen)) res();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) =>
      rej(new Error(`autoport proxy exited (code ${code}) before listening:\n${seen}`)),
    );
  });
  await Promise.race([
    ready,
    sleep(20_000).then(() => {
      throw new Error(`autoport proxy did not start within 20 s:\n${seen}`);
    }),
  ]);
}

/** INBOX message count and subjects, logged in through the gateway like a mail client. */
async function imapInbox(port: number, user: string, pass: string) {
  // doSTARTTLS false: the demo gateway has no certificate; plaintext is allowed on loopback.
  const c = new ImapFlow({
    host: HOST,
    port,
    secure: false,
    doSTARTTLS: false,
    auth: { user, pass },
    logger: false,
  });
  await c.connect();
  try {
    const box = await c.mailboxOpen('INBOX', { readOnly: true });
    const subjects: string[] = [];
    if (box.exists > 0)
      for await (const m of c.fetch('1:*', { envelope: true }))
        subjects.push(m.envelope?.subject ?? '');
    return { count: box.exists, subjects };
  } finally {
    await c.logout().catch(() => c.close());
  }
}

/**
 * One message per recipient, because the gateway defers (452) a recipient whose mailbox
 * lives on the other side than the first one's. A 4xx (account being moved right now) is
 * retried the way a sending MTA would, only faster.
 */
async function sendMail(port: number, to: string, subject: string): Promise<void> {
  const t = createTransport({ host: HOST, port, secure: false, ignoreTLS: true });
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        await t.sendMail({ from: 'newsletter@example.net', to, subject, text: `Hello ${to}\n` });
        return;
      } catch (err) {
        const code = (err as { responseCode?: number }).responseCode ?? 0;
        if (code < 400 || code >= 500 || attempt >= 15) throw err;
        await sleep(1000);
      }
    }
  } finally {
    t.close();
  }
}

type Accounts = Array<{ address: string; state: string }>;

async function accountStates(configFile: string): Promise<Map<string, string>> {
  const list = JSON.parse(await autoport(['accounts', 'list', '--json', '-c', configFile]));
  return new Map((list as Accounts).map((a) => [a.address, a.state]));
}

async function main(): Promise<void> {
  const t0 = Date.now();
  say('Starting a local source (Dovecot + Postfix) and an empty destination (Dovecot)');
  // No auth-failure delay: nothing here guesses passwords, and it keeps the demo quick.
  lab = await startLab({ sourceQuirks: { authFailureDelay: '0 secs' } });
  await lab.addSourceUser('carol@example.org', 'carol-secret');
  // team@ stands for a list or alias: a mailbox that receives mail but where nobody logs in.
  await lab.addSourceUser('team@example.org', 'team-never-logs-in');
  for (const u of ['alice', 'bob', 'carol']) {
    const r = await loadCorpus(
      lab.source,
      `${u}@example.org`,
      `${u}-secret`,
      standardCorpus({ to: `${u}@example.org` }),
    );
    note(`${u}@example.org: ${r.messages} messages in ${r.folders.length} folders on the source`);
  }

  say('Writing the AutoPort config and key, starting `autoport proxy`');
  const [imap, pop3, smtp, metrics] = (await freePorts(4)) as [number, number, number, number];
  const configFile = writeLabConfig(lab, lab.dir, {
    listen: { imap: `${HOST}:${imap}`, pop3: `${HOST}:${pop3}`, smtp: `${HOST}:${smtp}` },
    logDir: join(lab.dir, 'log'),
    transfer: { connections: 2, concurrency: 2 },
    control: { metrics: `${HOST}:${metrics}` },
  });
  const cfg = parse(readFileSync(configFile, 'utf8')) as { keyFile: string };
  await generateKeyFile(cfg.keyFile);
  const gatewayLog = join(lab.dir, 'gateway.log');
  await startGateway(configFile, gatewayLog);
  note(`gateway: IMAP ${HOST}:${imap}  POP3 ${HOST}:${pop3}  SMTP ${HOST}:${smtp}`);
  note(`config:  ${configFile}`);
  note(`its log: ${gatewayLog}`);
  note('Watch it from another terminal while the demo runs:');
  note(`  node bin/run.js monitor -c ${configFile}`);
  note(`  curl -s http://${HOST}:${metrics}/metrics | grep ^autoport_`);
  note(`  node bin/run.js report progress -c ${configFile}`);

  say('The administrator imports the list of all source accounts (through the running gateway)');
  // The list of real accounts (what `doveadm user '*'` gives on a real source) lets the
  // leftovers report tell a user who never logged in (carol) from an alias (team@). The
  // gateway owns the state now, so the command goes through its control socket.
  const accountsFile = join(lab.dir, 'all-accounts.txt');
  writeFileSync(accountsFile, 'alice@example.org\nbob@example.org\ncarol@example.org\n');
  note((await autoport(['accounts', 'import', accountsFile, '-c', configFile])).trim());

  say('alice logs in over IMAP (first login: captured, proxied to the source)');
  const before = await imapInbox(imap, 'alice@example.org', 'alice-secret');
  note(`alice sees ${before.count} messages in INBOX, then logs out`);

  say('bob logs in over POP3 and checks his mail');
  const pop = await Pop3Client.connect({
    host: HOST,
    port: pop3,
    tls: 'none',
    user: 'bob@example.org',
    password: 'bob-secret',
    timeoutMs: 15_000,
  });
  const stat = await pop.stat();
  await pop.quit();
  note(`STAT: ${stat.count} messages, ${stat.size} bytes; bob quits`);

  say('Mail arrives over SMTP for alice, bob, carol and team@ (a list nobody logs in to)');
  for (const u of ['alice', 'bob', 'carol', 'team'])
    await sendMail(smtp, `${u}@example.org`, `Demo: hello ${u}`);
  note('4 messages accepted; each went to wherever its mailbox lives right now');

  say('What `autoport monitor` shows now (its one-shot text form, `--once`)');
  const shot = await autoport(['monitor', '--once', '-c', configFile]);
  for (const line of shot.trimEnd().split('\n')) note(line);

  say(`Waiting (up to ${MIGRATE_MS / 1000} s) for the worker pool to move alice and bob`);
  const deadline = Date.now() + MIGRATE_MS;
  let states = new Map<string, string>();
  for (;;) {
    states = await accountStates(configFile);
    const a = states.get('alice@example.org');
    const b = states.get('bob@example.org');
    if (a === 'migrated' && b === 'migrated') break;
    if (a === 'failed' || b === 'failed')
      throw new Error(`a transfer failed (alice ${a}, bob ${b}); see ${gatewayLog}`);
    if (Date.now() > deadline)
      throw new Error(`not migrated in time (alice ${a}, bob ${b}); see ${gatewayLog}`);
    await sleep(1000);
  }
  note([...states].map(([k, v]) => `${k}: ${v}`).join(', '));

  say('alice logs in again: now served by the destination');
  // The demo mail may have reached the source just before the copy, or the destination
  // after it; either way it must be in her INBOX now.
  const after = await imapInbox(imap, 'alice@example.org', 'alice-secret');
  note(`alice sees ${after.count} messages in INBOX (before: ${before.count} + 1 new)`);
  if (after.count !== before.count + 1 || !after.subjects.includes('Demo: hello alice'))
    throw new Error(`alice's INBOX on the destination is not what she had plus the new mail`);

  say('New mail for alice now goes straight to the destination');
  await sendMail(smtp, 'alice@example.org', 'Demo: after the move');
  let count = 0;
  for (let i = 0; i < 20 && count !== after.count + 1; i++) {
    if (i) await sleep(500);
    const r = await imapInbox(imap, 'alice@example.org', 'alice-secret');
    count = r.subjects.includes('Demo: after the move') ? r.count : 0;
  }
  if (count !== after.count + 1) throw new Error('the mail sent after the move did not arrive');
  note(`delivered: alice now has ${count} messages in INBOX on the destination`);

  say('What the gateway tells Prometheus (a few of the series on /metrics)');
  const scrape = await (await fetch(`http://${HOST}:${metrics}/metrics`)).text();
  const shown = /^autoport_(logins_total|smtp_messages_total|accounts|transfer_messages_total)[{ ]/;
  // Families in the registry's order; within one, label sets sorted (prom-client lists them
  // in the order they were first touched, which depends on who logged in first).
  const lines = scrape.split('\n').filter((l) => shown.test(l) && !/ 0$/.test(l));
  const family = (l: string): string => l.replace(/[{ ].*/, '');
  const families = [...new Set(lines.map(family))];
  for (const f of families) for (const l of lines.filter((x) => family(x) === f).sort()) note(l);
  const health = await fetch(`http://${HOST}:${metrics}/healthz`);
  note(`/healthz: ${health.status} ${(await health.text()).trim()}`);

  say('Stopping the gateway (SIGTERM: sessions finish, state is saved)');
  await stopGateway();

  say('What still depends on the source: `autoport report leftovers`');
  console.log(await autoport(['report', 'leftovers', '-c', configFile]));
  say('How far along we are: `autoport report progress`');
  console.log(await autoport(['report', 'progress', '-c', configFile]));

  await lab.stop();
  lab = undefined;
  console.log(`Demo finished in ${((Date.now() - t0) / 1000).toFixed(1)} s.`);
  if (keepTemp()) console.log(`Kept the lab dir (AUTOPORT_KEEP_TMP): ${dirname(configFile)}`);
  else console.log('Set AUTOPORT_KEEP_TMP=1 to keep the lab dir (config, state, logs).');
}

async function stopGateway(): Promise<void> {
  const child = gateway;
  gateway = undefined;
  if (!child || child.exitCode !== null) return;
  child.kill('SIGTERM');
  const code = await Promise.race([gatewayExit, sleep(10_000).then(() => 'timeout' as const)]);
  if (code === 'timeout') {
    child.kill('SIGKILL');
    throw new Error('autoport proxy did not stop within 10 s of SIGTERM');
  }
  if (code !== 0) throw new Error(`autoport proxy exited with code ${code}`);
}

async function cleanUp(): Promise<void> {
  if (gateway && gateway.exitCode === null) gateway.kill('SIGKILL');
  await lab?.stop();
  if (lab && keepTemp()) console.error(`Kept the lab dir (AUTOPORT_KEEP_TMP): ${lab.dir}`);
}

const timer = setTimeout(() => {
  console.error(`demo FAILED: it did not finish within ${TOTAL_MS / 1000} s`);
  void cleanUp().finally(() => process.exit(1));
}, TOTAL_MS);

main().then(
  () => {
    clearTimeout(timer);
    process.exit(0);
  },
  async (err: unknown) => {
    clearTimeout(timer);
    console.error(`demo FAILED at step ${step}: ${(err as Error)?.stack ?? String(err)}`);
    await cleanUp().catch(() => {});
    process.exit(1);
  },
);
