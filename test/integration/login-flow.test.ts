/**
 * The login flow against a real source Dovecot (and a real Postfix submission service
 * checking its passwords over SASL): what brute force can and cannot do through the
 * gateway, a source that cannot check passwords now, a failure after the source accepted,
 * and one refusal for a wrong password whatever the account's state. Clients connect from
 * 127.0.0.2 and up (localAddress) so each test has its own client addresses.
 */
import assert from 'node:assert/strict';
import { connect, createServer, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { parseEndpoint } from '../../src/core/config/endpoint.js';
import type { Config } from '../../src/core/config/types.js';
import type { Gateway, GatewayDeps } from '../../src/core/gateway/gateway.js';
import { StateError } from '../../src/core/state/errors.js';
import type { StateStore } from '../../src/core/state/types.js';
import { makeUpstreams } from '../../src/core/gateway/upstream-factory.js';
import type { UpstreamFactory } from '../../src/core/upstreams/types.js';
import { freePort, testTls, type Credentials, type PostfixInstance } from '../support/index.js';
import { RawClient, startProxyLab, type ProxyLab } from './proxy-support.js';
import { saslListener, startSubmissionMta } from './smtp-support.js';
import { SmtpDialog } from './smtp-wire.js';

const D = 'example.org';
const alice: Credentials = { user: `alice@${D}`, password: 'alice-secret' };
const bob: Credentials = { user: `bob@${D}`, password: 'bob-secret' };
const carol: Credentials = { user: `carol@${D}`, password: 'carol-secret' };
const dan: Credentials = { user: `dan@${D}`, password: 'dan-secret' };
const erin: Credentials = { user: `erin@${D}`, password: 'erin-secret' };
const USERS = [alice, bob, carol, dan, erin];

/** The real upstream factory, counting source logins and keeping their sockets. */
function counting(config: () => Config): {
  factory: UpstreamFactory;
  source: { logins: number; sockets: Socket[] };
} {
  const real = makeUpstreams(config, {});
  const source = { logins: 0, sockets: [] as Socket[] };
  return {
    source,
    factory: {
      async login(side, protocol, creds, client, opts) {
        if (side === 'source') source.logins++;
        const u = await real.login(side, protocol, creds, client, opts);
        if (side === 'source') source.sockets.push(u.socket);
        return u;
      },
    },
  };
}

async function rawFrom(port: number, localAddress: string): Promise<RawClient> {
  const s = connect({ port, host: '127.0.0.1', localAddress });
  await new Promise<void>((resolve, reject) => {
    s.once('connect', resolve);
    s.once('error', reject);
  });
  return new RawClient(s);
}

/** One IMAP LOGIN on a fresh connection: the tagged reply line. */
async function imapLogin(port: number, from: string, user: string, pw: string): Promise<string> {
  const c = await rawFrom(port, from);
  try {
    await c.waitFor(/^\* OK/m, 10_000);
    c.send(`a LOGIN "${user}" "${pw}"\r\n`);
    return (await c.waitFor(/^a (OK|NO|BAD)[^\r\n]*/m, 60_000))[0];
  } finally {
    c.close();
  }
}

async function pop3Login(port: number, from: string, user: string, pw: string): Promise<string> {
  const c = await rawFrom(port, from);
  try {
    await c.waitFor(/^\+OK[^\r\n]*\r\n/m, 10_000);
    let at = c.text.length;
    c.send(`USER ${user}\r\n`);
    await c.waitFor(/^[+-][^\r\n]*\r\n/m, 10_000, at);
    at = c.text.length;
    c.send(`PASS ${pw}\r\n`);
    return (await c.waitFor(/^[+-](OK|ERR)[^\r\n]*/m, 60_000, at))[0];
  } finally {
    c.close();
  }
}

async function smtpAuth(port: number, from: string, user: string, pw: string): Promise<string> {
  const d = await SmtpDialog.open(port, { localAddress: from });
  try {
    await d.reply();
    await d.cmd('EHLO client.test');
    return await d.cmd(`AUTH PLAIN ${Buffer.from(`\0${user}\0${pw}`).toString('base64')}`);
  } finally {
    d.close();
  }
}

/**
 * A line-scripted stand-in server: `answer` gives the reply (CRLF-joined lines) to each
 * line the gateway sends; every line is kept.
 */
async function scripted(greeting: string, answer: (line: string) => string) {
  const lines: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => undefined);
    sock.write(`${greeting}\r\n`);
    let buf = '';
    sock.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (let i = buf.indexOf('\r\n'); i >= 0; i = buf.indexOf('\r\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        lines.push(line);
        sock.write(`${answer(line)}\r\n`);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    matching: (re: RegExp) => lines.filter((l) => re.test(l)).length,
    stop: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

describe('the login flow against a real source', { timeout: 240_000 }, () => {
  let p: ProxyLab;
  let srcSub: PostfixInstance;
  let ca: string;
  let submissionConfig: Config;

  /** A gateway over the lab with its own brakes, IMAP/POP3 upstreams counted, and submission. */
  async function gateway(over: Partial<GatewayDeps> = {}, config?: Config) {
    const cfg = config ?? submissionConfig;
    const count = counting(() => cfg);
    const g: Gateway = await p.another(
      {
        upstreams: count.factory,
        upstreamOptions: { ca },
        smtp: true,
        limits: { brakes: { failureDelayMs: 20, maxFailureDelayMs: 80 } },
        ...over,
      },
      cfg,
    );
    return {
      g,
      source: count.source,
      imap: g.listeners.imap!.port,
      pop3: g.listeners.pop3!.port,
      submission: g.listeners.submission!.port,
    };
  }

  before(async () => {
    const sasl = await freePort();
    p = await startProxyLab({
      lab: { users: USERS, sourceQuirks: { extraConfig: saslListener(sasl) } },
    });
    ca = (await testTls()).ca;
    srcSub = await startSubmissionMta('srcsub', p.lab.source, sasl, p.lab, USERS);
    submissionConfig = {
      ...p.config,
      source: {
        ...p.config.source,
        submission: parseEndpoint(
          `submission://127.0.0.1:${srcSub.port}?tls=starttls&servername=localhost`,
        ),
      },
      listen: {
        imap: { host: '127.0.0.1', port: 0 },
        pop3: { host: '127.0.0.1', port: 0 },
        submission: { host: '127.0.0.1', port: 0 },
      },
    };
  });
  after(async () => {
    await srcSub?.stop();
    await p?.stop();
  });

  it('200 parallel wrong passwords from one address reach the source a bounded number of times', async () => {
    const { g, source, imap } = await gateway();
    const replies = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        imapLogin(imap, '127.0.0.2', i % 2 ? alice.user : `guess${i}@${D}`, `wrong${i}`),
      ),
    );
    const failed = replies.filter((r) => r.startsWith('a NO [AUTHENTICATIONFAILED]')).length;
    const braked = replies.filter((r) => r.startsWith('a NO [LIMIT]')).length;
    assert.equal(
      failed + braked,
      200,
      replies.find((r) => !/\[(AUTHENTICATIONFAILED|LIMIT)\]/.test(r)),
    );
    assert.ok(source.logins > 0, 'some attempts were checked');
    assert.ok(
      source.logins <= g.limits.brakes.maxFailuresPerAddress,
      `${source.logins} of 200 reached the source`,
    );
    assert.equal(
      failed,
      source.logins,
      'every other attempt was refused without asking the source',
    );
  });

  it('a flood of wrong passwords for alice from 127.0.0.3 does not keep alice out from 127.0.0.4 (IMAP, POP3, submission)', async () => {
    const { g, imap, pop3, submission } = await gateway();
    const flood = Promise.all([
      ...Array.from({ length: 30 }, (_, i) => imapLogin(imap, '127.0.0.3', alice.user, `x${i}`)),
      ...Array.from({ length: 15 }, (_, i) => pop3Login(pop3, '127.0.0.3', alice.user, `y${i}`)),
      ...Array.from({ length: 10 }, (_, i) =>
        smtpAuth(submission, '127.0.0.3', alice.user, `z${i}`),
      ),
    ]);
    const during = await imapLogin(imap, '127.0.0.4', alice.user, alice.password);
    const flooded = await flood;
    assert.match(during, /^a OK /);
    // after the flood: the owner, from her own address, in all three protocols
    assert.match(await imapLogin(imap, '127.0.0.4', alice.user, alice.password), /^a OK /);
    assert.match(await pop3Login(pop3, '127.0.0.4', alice.user, alice.password), /^\+OK/);
    assert.match(await smtpAuth(submission, '127.0.0.4', alice.user, alice.password), /^235 /);
    assert.ok(
      flooded.filter((r) => /\[LIMIT\]|\[SYS\/TEMP\] Too many|^421 /.test(r)).length >=
        flooded.length - 2 * g.limits.brakes.maxFailuresPerAccount,
      'the guessing address is braked',
    );
    // and the guessing address stays braked for her account, even with the right password
    assert.match(await imapLogin(imap, '127.0.0.3', alice.user, alice.password), /^a NO \[LIMIT\]/);
  });

  it('a source that cannot check passwords now (NO [UNAVAILABLE], -ERR [SYS/TEMP], 454) is a try-later, not a wrong password', async () => {
    // Dovecot says these when its password database is down, which a test cannot make a
    // real Dovecot do on cue: scripted stand-ins behind the real upstream clients.
    const imapSrc = await scripted('* OK [CAPABILITY IMAP4rev1 ID] stand-in', (l) => {
      const [tag, verb] = l.split(' ');
      if (/^LOGIN$/i.test(verb ?? ''))
        return `${tag} NO [UNAVAILABLE] Temporary authentication failure.`;
      return /^ID$/i.test(verb ?? '') ? `* ID NIL\r\n${tag} OK ID` : `${tag} OK`;
    });
    const popSrc = await scripted('+OK stand-in', (l) =>
      /^PASS /i.test(l)
        ? '-ERR [SYS/TEMP] Temporary authentication failure.'
        : /^CAPA/i.test(l)
          ? '+OK\r\nUSER\r\n.'
          : '+OK',
    );
    const smtpSrc = await scripted('220 stand-in ESMTP', (l) =>
      /^EHLO/i.test(l)
        ? '250-stand-in\r\n250 AUTH PLAIN'
        : /^AUTH/i.test(l)
          ? '454 4.7.0 Temporary authentication failure'
          : '250 ok',
    );
    const cfg: Config = {
      ...submissionConfig,
      source: {
        ...submissionConfig.source,
        imap: parseEndpoint(`imap://127.0.0.1:${imapSrc.port}?tls=none`),
        pop3: parseEndpoint(`pop3://127.0.0.1:${popSrc.port}?tls=none`),
        submission: parseEndpoint(`submission://127.0.0.1:${smtpSrc.port}?tls=none`),
      },
    };
    const { imap, pop3, submission } = await gateway(
      {
        limits: { brakes: { failureDelayMs: 20, maxFailureDelayMs: 80, maxFailuresPerAccount: 2 } },
      },
      cfg,
    );
    try {
      // four of each from one address for one account, with a limit of two failures
      for (let i = 0; i < 4; i++) {
        assert.equal(
          await imapLogin(imap, '127.0.0.5', bob.user, bob.password),
          'a NO [UNAVAILABLE] Server temporarily unavailable, try again later.',
        );
        assert.equal(
          await pop3Login(pop3, '127.0.0.5', bob.user, bob.password),
          '-ERR [SYS/TEMP] Server temporarily unavailable, try again later.',
        );
        assert.match(
          await smtpAuth(submission, '127.0.0.5', bob.user, bob.password),
          /^454 4\.7\.0 /,
        );
      }
      assert.deepEqual(
        [imapSrc.matching(/ LOGIN /i), popSrc.matching(/^PASS /i), smtpSrc.matching(/^AUTH /i)],
        [4, 4, 4],
        'none was braked: a try-later is not counted as a failure',
      );
      assert.equal((await p.store.get(bob.user))?.credentials, undefined);
    } finally {
      await Promise.all([imapSrc.stop(), popSrc.stop(), smtpSrc.stop()]);
    }
  });

  it('submission closes a connection after a few failed AUTHs, as IMAP and POP3 do', async () => {
    const { g, submission } = await gateway();
    const d = await SmtpDialog.open(submission, { localAddress: '127.0.0.9' });
    try {
      await d.reply();
      await d.cmd('EHLO client.test');
      const auth = (pw: string) =>
        d.cmd(`AUTH PLAIN ${Buffer.from(`\0${bob.user}\0${pw}`).toString('base64')}`);
      const max = g.limits.preauth.maxFailuresPerConnection;
      for (let i = 1; i < max; i++) assert.match(await auth(`wrong${i}`), /^535 5\.7\.8 /);
      assert.match(await auth('wrong-last'), /^421 4\.7\.0 Too many failed logins/);
      assert.equal(await d.reply(), '', 'closed');
    } finally {
      d.close();
    }
  });

  it('recording the capture fails after the source accepted: the source session is closed', async () => {
    const store = new Proxy(p.store, {
      get(target, key) {
        if (key === 'update')
          return async (address: string, fn: Parameters<StateStore['update']>[1]) => {
            if (address === carol.user) throw new StateError('EIO', 'disk full (test)');
            return await target.update(address, fn);
          };
        const v = Reflect.get(target, key, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const { imap, pop3, source } = await gateway({ store });
    assert.match(
      await imapLogin(imap, '127.0.0.6', carol.user, carol.password),
      /^a NO \[UNAVAILABLE\] /,
    );
    assert.match(
      await pop3Login(pop3, '127.0.0.6', carol.user, carol.password),
      /^-ERR \[SYS\/TEMP\]/,
    );
    assert.equal(source.sockets.length, 2, 'the source accepted both logins');
    for (const s of source.sockets) assert.ok(s.destroyed, 'the source session was closed');
    assert.equal((await p.store.get(carol.user))?.credentials, undefined);
  });

  it('a wrong password gets one refusal whatever the account state; only the right one learns of the move', async () => {
    const { imap, pop3, submission } = await gateway({
      limits: { brakes: { failureDelayMs: 20, maxFailureDelayMs: 80, maxFailuresPerAccount: 50 } },
    });
    // dan is captured (his password sealed), then locked for his transfer; erin is being
    // moved with no password captured; a third account is excluded.
    assert.match(await imapLogin(imap, '127.0.0.7', dan.user, dan.password), /^a OK /);
    await p.store.update(dan.user, (r) => {
      r.state = 'transferring';
    });
    await p.store.upsert(erin.user, { state: 'transferring' });
    await p.store.upsert(`excluded@${D}`, { state: 'excluded' });
    const imapNo = 'a NO [AUTHENTICATIONFAILED] Authentication failed.';
    for (const user of [dan.user, erin.user, `excluded@${D}`, `nobody@${D}`, bob.user]) {
      assert.equal(await imapLogin(imap, '127.0.0.7', user, 'wrong'), imapNo, user);
      assert.equal(
        await pop3Login(pop3, '127.0.0.7', user, 'wrong'),
        '-ERR [AUTH] Authentication failed.',
        user,
      );
      assert.match(
        await smtpAuth(submission, '127.0.0.7', user, 'wrong'),
        /^535 5\.7\.8 Authentication credentials invalid$/,
        user,
      );
    }
    for (const u of [dan, erin]) {
      assert.match(
        await imapLogin(imap, '127.0.0.8', u.user, u.password),
        /^a NO \[UNAVAILABLE\] Account is being moved/,
      );
      assert.match(
        await pop3Login(pop3, '127.0.0.8', u.user, u.password),
        /^-ERR \[SYS\/TEMP\] Account is being moved/,
      );
      assert.match(
        await smtpAuth(submission, '127.0.0.8', u.user, u.password),
        /^454 4\.7\.0 Account is being moved/,
      );
    }
    await p.store.update(dan.user, (r) => {
      r.state = 'captured';
    });
    await p.store.remove(erin.user);
  });
});
