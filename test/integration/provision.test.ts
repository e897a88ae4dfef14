/**
 * The passwd-file provisioner against a real Dovecot: the user it writes can log in
 * over IMAP (after Dovecot's once-a-second re-read), a password update takes effect
 * and the old password stops working, and parallel writers leave a valid file.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { ImapFlow } from 'imapflow';
import { startDovecot, type DovecotInstance } from '../support/index.js';
import { makeProvisioner, waitForLogin } from '../../src/core/provision/index.js';

const OLD_USER = { user: 'existing@example.org', password: 'existing-pass' };
let dovecot: DovecotInstance;

before(async () => {
  dovecot = await startDovecot({ name: 'provision', users: [OLD_USER] });
});
after(async () => {
  await dovecot?.stop();
});

/** true: logged in; false: the server refused the credentials; anything else throws. */
async function imapLogin(user: string, password: string): Promise<boolean> {
  const client = new ImapFlow({
    host: dovecot.host,
    port: dovecot.ports.imap,
    secure: false,
    auth: { user, pass: password },
    logger: false,
    disableAutoIdle: true,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.logout();
    return true;
  } catch (err) {
    if ((err as { authenticationFailed?: boolean }).authenticationFailed) return false;
    throw err;
  }
}

test('a provisioned user logs in; a new password replaces the old one', async () => {
  const p = makeProvisioner({ kind: 'passwd-file', path: dovecot.passwdFile });
  const modeBefore = (await stat(dovecot.passwdFile)).mode & 0o7777;
  await p.provision('new@example.org', 'first secret');
  const first = await waitForLogin(() => imapLogin('new@example.org', 'first secret'), {
    timeoutMs: 15_000,
  });
  assert.ok(first.attempts >= 1);

  await p.provision('new@example.org', 'second secret');
  await waitForLogin(() => imapLogin('new@example.org', 'second secret'), { timeoutMs: 15_000 });
  assert.equal(
    await imapLogin('new@example.org', 'first secret'),
    false,
    'the old password is refused',
  );

  const text = await readFile(dovecot.passwdFile, 'utf8');
  assert.equal(text.split('\n').filter((l) => l.startsWith('new@example.org:')).length, 1);
  assert.doesNotMatch(text, /first secret|second secret/);
  assert.equal((await stat(dovecot.passwdFile)).mode & 0o7777, modeBefore);
  assert.ok(
    await imapLogin(OLD_USER.user, OLD_USER.password),
    "the harness's own user still works",
  );
});

test('20 parallel provisions: 20 valid lines, every user accepted by Dovecot', async () => {
  const p = makeProvisioner({ kind: 'passwd-file', path: dovecot.passwdFile });
  const users = Array.from({ length: 20 }, (_, i) => ({
    user: `par${i}@example.org`,
    password: `pw-${i}:#${i}`,
  }));
  await Promise.all(users.map((u) => p.provision(u.user, u.password)));
  const lines = (await readFile(dovecot.passwdFile, 'utf8')).split('\n').filter(Boolean);
  for (const line of lines)
    assert.match(line, /^[^:\s]+:\{(PLAIN|SHA512-CRYPT)\}/, `malformed line ${line}`);
  assert.equal(lines.filter((l) => l.startsWith('par')).length, 20);
  // Dovecot's auth process is the judge; retry while it has not re-read the file yet.
  await waitForLogin(async () => {
    try {
      await dovecot.doveadm(['auth', 'test', users[19]!.user, users[19]!.password]);
      return true;
    } catch {
      return false;
    }
  });
  await Promise.all(users.map((u) => dovecot.doveadm(['auth', 'test', u.user, u.password])));
  assert.ok(await imapLogin(users[7]!.user, users[7]!.password));
});
