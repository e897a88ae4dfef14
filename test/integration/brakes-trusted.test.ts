/**
 * brakes.trusted (Dovecot's login_trusted_networks) through the real gateway against the
 * real source Dovecot. The IMAP listener sits behind PROXY protocol (the test, on
 * 127.0.0.1, is the trusted proxy) so each connection presents the client address the
 * brakes see: 192.0.2.10 is a webmail host in brakes.trusted, 198.51.100.7 is not. Both
 * lists come from the YAML config, as an operator writes them.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Credentials } from '../support/index.js';
import { RawClient, startProxyLab, type ProxyLab } from './proxy-support.js';

const D = 'example.org';
const alice: Credentials = { user: `alice@${D}`, password: 'alice-secret' };
const bob: Credentials = { user: `bob@${D}`, password: 'bob-secret' };
const carol: Credentials = { user: `carol@${D}`, password: 'carol-secret' };
const WEBMAIL = '192.0.2.10';
const STRANGER = '198.51.100.7';
/** lower than the defaults (30 and 8) so the test is quick; the code path is the same */
const BRAKES = { failureDelayMs: 20, maxFailureDelayMs: 80, maxFailuresPerAddress: 8 };
const PER_ACCOUNT = 3;

/** One IMAP LOGIN from `client` (a PROXY v1 header on its own connection): the tagged reply. */
async function login(port: number, client: string, user: string, pw: string): Promise<string> {
  const s = connect({ port, host: '127.0.0.1' });
  await new Promise<void>((resolve, reject) => {
    s.once('connect', resolve);
    s.once('error', reject);
  });
  const c = new RawClient(s);
  try {
    c.send(`PROXY TCP4 ${client} 127.0.0.1 40000 143\r\n`);
    await c.waitFor(/^\* OK/m, 10_000);
    c.send(`a LOGIN "${user}" "${pw}"\r\n`);
    return (await c.waitFor(/^a (OK|NO|BAD)[^\r\n]*/m, 30_000))[0];
  } finally {
    c.close();
  }
}

/** Wrong passwords for `accounts` accounts, `each` per account, one after another. */
async function guesses(port: number, client: string, accounts: number, each: number) {
  const replies: string[] = [];
  for (let i = 0; i < accounts * each; i++)
    replies.push(await login(port, client, `user${i % accounts}@${D}`, `wrong${i}`));
  return replies;
}

describe('brakes.trusted through the gateway (real Dovecot)', { timeout: 120_000 }, () => {
  let p: ProxyLab;

  before(async () => {
    p = await startProxyLab({
      lab: { users: [alice, bob, carol] },
      config: {
        proxyProtocol: { listeners: ['imap'], trusted: ['127.0.0.1'] },
        brakes: { trusted: ['192.0.2.0/28'] },
      },
      deps: { limits: { brakes: { ...BRAKES, maxFailuresPerAccount: PER_ACCOUNT } } },
    });
  });
  after(async () => {
    await p?.stop();
  });

  it('more failures than maxFailuresPerAddress from a trusted address do not stop a right password there', async () => {
    const failures = BRAKES.maxFailuresPerAddress * 2;
    const replies = await guesses(p.imapPort, WEBMAIL, failures / 2, 2);
    assert.deepEqual(
      replies.filter((r) => !r.startsWith('a NO [AUTHENTICATIONFAILED]')),
      [],
      'each reached the source and failed there; none was braked',
    );
    assert.match(await login(p.imapPort, WEBMAIL, alice.user, alice.password), /^a OK /);
    // still logged for fail2ban, one line per failure, with the client's address
    const lines = p
      .logText()
      .split('\n')
      .filter((l) => l.includes('"msg":"login failed"') && l.includes(`"client":"${WEBMAIL}"`));
    assert.equal(lines.length, failures);
  });

  it('the same from an address not in the list is refused, right password included', async () => {
    const replies = await guesses(p.imapPort, STRANGER, BRAKES.maxFailuresPerAddress, 2);
    const failed = replies.filter((r) => r.startsWith('a NO [AUTHENTICATIONFAILED]'));
    assert.equal(failed.length, BRAKES.maxFailuresPerAddress);
    assert.ok(replies.slice(BRAKES.maxFailuresPerAddress).every((r) => /^a NO \[LIMIT\]/.test(r)));
    assert.match(await login(p.imapPort, STRANGER, bob.user, bob.password), /^a NO \[LIMIT\]/);
  });

  it('one account guessed through the trusted address is still braked; others are not', async () => {
    for (let i = 0; i < PER_ACCOUNT; i++)
      assert.match(
        await login(p.imapPort, WEBMAIL, carol.user, `nope${i}`),
        /^a NO \[AUTHENTICATIONFAILED\]/,
      );
    assert.match(
      await login(p.imapPort, WEBMAIL, carol.user, carol.password),
      /^a NO \[LIMIT\]/,
      "the pair's limit holds",
    );
    assert.match(await login(p.imapPort, WEBMAIL, bob.user, bob.password), /^a OK /);
  });

  it('a reload without the list brakes the address with the failures it already has', async () => {
    p.gateway.reload({ ...p.config, brakes: { trusted: [] } });
    try {
      assert.match(await login(p.imapPort, WEBMAIL, bob.user, bob.password), /^a NO \[LIMIT\]/);
    } finally {
      p.gateway.reload(p.config);
    }
    assert.match(await login(p.imapPort, WEBMAIL, bob.user, bob.password), /^a OK /);
  });
});
