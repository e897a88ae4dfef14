import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { chown, mkdtemp, readFile, rm, stat, writeFile, chmod, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { hashPassword, shaCrypt, verifyShaCrypt } from '../../src/core/provision/hash.js';
import {
  makeProvisioner,
  ProvisionError,
  upsertPasswdLine,
  waitForLogin,
} from '../../src/core/provision/index.js';
import { makeCommandProvisioner } from '../../src/core/provision/command.js';
import { makePasswdFileProvisioner } from '../../src/core/provision/passwd-file.js';

const run = promisify(execFile);

async function tmp(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'autoport-prov-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Dovecot's own verdict on a "{SCHEME}..." hash. */
async function doveadmVerifies(hash: string, password: string): Promise<boolean> {
  try {
    const { stdout } = await run('doveadm', ['-O', 'pw', '-t', hash, '-p', password]);
    return stdout.includes('(verified)');
  } catch {
    return false;
  }
}

// Ulrich Drepper, "Unix crypt using SHA-256 and SHA-512", test vectors.
const VECTORS_512: Array<[string, string, number | undefined, string]> = [
  [
    'Hello world!',
    'saltstring',
    undefined,
    '$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1',
  ],
  [
    'Hello world!',
    'saltstringsaltstring',
    10000,
    '$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.',
  ],
  [
    'This is just a test',
    'toolongsaltstring',
    5000,
    '$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0',
  ],
  [
    'a very much longer text to encrypt.  This one even stretches over morethan one line.',
    'anotherlongsaltstring',
    1400,
    '$6$rounds=1400$anotherlongsalts$POfYwTEok97VWcjxIiSOjiykti.o/pQs.wPvMxQ6Fm7I6IoYN3CmLs66x9t0oSwbtEW7o7UmJEiDwGqd8p4ur1',
  ],
  [
    'we have a short salt string but not a short password',
    'short',
    77777,
    '$6$rounds=77777$short$WuQyW2YR.hBNpjjRhpYD/ifIw05xdfeEyQoMxIXbkvr0gge1a1x3yRULJ5CCaUeOxFmtlcGZelFl5CxtgfiAc0',
  ],
  [
    'a short string',
    'asaltof16chars..',
    123456,
    '$6$rounds=123456$asaltof16chars..$BtCwjqMJGx5hrJhZywWvt0RLE8uZ4oPwcelCjmw2kSYu.Ec6ycULevoBK25fs2xXgMNrCzIMVcgEJAstJeonj1',
  ],
  [
    'the minimum number is still observed',
    'roundstoolow',
    10,
    '$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX.',
  ],
];
const VECTORS_256: Array<[string, string, number | undefined, string]> = [
  [
    'Hello world!',
    'saltstring',
    undefined,
    '$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5',
  ],
  [
    'Hello world!',
    'saltstringsaltstring',
    10000,
    '$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA',
  ],
  [
    'the minimum number is still observed',
    'roundstoolow',
    10,
    '$5$rounds=1000$roundstoolow$yfvwcWrQ8l/K0DAWyuPMDNHpIVlTQebY9l/gL972bIC',
  ],
];

test('sha-crypt matches the specification vectors', () => {
  for (const [pw, salt, rounds, want] of VECTORS_512)
    assert.equal(shaCrypt(pw, { bits: 512, salt, rounds }), want);
  for (const [pw, salt, rounds, want] of VECTORS_256)
    assert.equal(shaCrypt(pw, { bits: 256, salt, rounds }), want);
  assert.ok(verifyShaCrypt('Hello world!', VECTORS_512[0]?.[3] ?? ''));
  assert.ok(!verifyShaCrypt('Hello world?', VECTORS_512[0]?.[3] ?? ''));
});

test('default SHA512-CRYPT hashes are salted and accepted by doveadm pw -t', async () => {
  const pw = 'p\u00e4ss w:rd#1$';
  const a = await hashPassword(pw);
  const b = await hashPassword(pw);
  assert.match(a, /^\{SHA512-CRYPT\}\$6\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}$/);
  assert.notEqual(a, b, 'two hashes of one password must differ (random salt)');
  assert.ok(await doveadmVerifies(a, pw));
  assert.ok(!(await doveadmVerifies(a, 'wrong')));
  assert.ok(await doveadmVerifies(await hashPassword('', 'SHA256-CRYPT'), ''));
});

test('BLF-CRYPT and ARGON2ID come from doveadm, password on stdin', async () => {
  for (const scheme of ['BLF-CRYPT', 'ARGON2ID']) {
    const h = await hashPassword('  spaced secret  ', scheme);
    assert.ok(h.startsWith(`{${scheme}}`), h);
    assert.ok(await doveadmVerifies(h, '  spaced secret  '), scheme);
  }
  await assert.rejects(hashPassword('two\nlines', 'BLF-CRYPT'), /line breaks/);
  await assert.rejects(
    hashPassword('x', 'BLF-CRYPT', { doveadm: '/nonexistent/doveadm' }),
    (err: unknown) => {
      return err instanceof ProvisionError && err.config && /needs doveadm/.test(err.message);
    },
  );
});

test('plaintext and unknown schemes are configuration errors', async () => {
  for (const s of ['PLAIN', 'CLEARTEXT', 'plain']) {
    await assert.rejects(
      hashPassword('x', s),
      (e: unknown) => e instanceof ProvisionError && e.config && /in clear/.test(e.message),
    );
  }
  await assert.rejects(hashPassword('x', 'MD5'), /not supported.*SHA512-CRYPT/);
  assert.throws(
    () => makeProvisioner({ kind: 'passwd-file', path: '/x', scheme: 'CRAM-MD5' }),
    /not supported/,
  );
  assert.throws(() => makeProvisioner({ kind: 'passwd-file' }), /provision.path/);
  assert.throws(() => makeProvisioner({ kind: 'command', command: [] }), /non-empty list/);
  assert.equal(makeProvisioner({ kind: 'none' }).kind, 'none');
});

test('upsertPasswdLine adds, updates in place and keeps everything else', () => {
  const before = [
    '# managed by hand',
    'alice@example.org:{PLAIN}old:1000:1000::/home/alice::userdb_mail=maildir:~/Maildir',
    'Bob@example.org:{SHA512-CRYPT}$6$x$y',
    '',
    'carol@example.org:{SHA512-CRYPT}$6$c$c',
  ].join('\n');
  const updated = upsertPasswdLine(before, 'alice@example.org', '{SHA512-CRYPT}$6$new$hash');
  assert.equal(
    updated,
    [
      '# managed by hand',
      'alice@example.org:{SHA512-CRYPT}$6$new$hash:1000:1000::/home/alice::userdb_mail=maildir:~/Maildir',
      'Bob@example.org:{SHA512-CRYPT}$6$x$y',
      '',
      'carol@example.org:{SHA512-CRYPT}$6$c$c',
      '',
    ].join('\n'),
  );
  // names are compared exactly: "bob" is not "Bob"
  const added = upsertPasswdLine(updated, 'bob@example.org', '{SHA512-CRYPT}$6$b$b');
  assert.ok(
    added.endsWith(
      'Bob@example.org:{SHA512-CRYPT}$6$x$y\n\ncarol@example.org:{SHA512-CRYPT}$6$c$c\nbob@example.org:{SHA512-CRYPT}$6$b$b::::::\n',
    ),
  );
  assert.equal(
    upsertPasswdLine('', 'dave@ex.org', '{X}h', {
      uid: 'vmail',
      gid: 'vmail',
      home: '/srv/mail/%d/%n',
    }),
    'dave@ex.org:{X}h:vmail:vmail::/srv/mail/ex.org/dave::\n',
  );
  for (const bad of ['', 'a:b@x', 'a b@x', '#a@x', 'a\n@x']) {
    assert.throws(() => upsertPasswdLine('', bad, '{X}h'), ProvisionError, JSON.stringify(bad));
  }
});

test('passwd-file provisioner: new file, update, mode and mtime kept meaningful', async (t) => {
  const dir = await tmp(t);
  const file = join(dir, 'passwd');
  const p = makePasswdFileProvisioner({ path: file });
  await p.provision('u1@example.org', 'first');
  assert.equal((await stat(file)).mode & 0o777, 0o640);
  await chmod(file, 0o600);
  const past = new Date(Math.floor(Date.now() / 1000) * 1000);
  await utimes(file, past, past);
  const before = await stat(file);
  await p.provision('u1@example.org', 'second');
  const after = await stat(file);
  assert.equal(after.mode & 0o777, 0o600, 'mode of an existing file is kept');
  // same length line, same second: Dovecot would not notice unless the mtime moves on
  assert.equal(after.size, before.size);
  assert.ok(
    Math.floor(after.mtimeMs / 1000) > Math.floor(before.mtimeMs / 1000),
    'mtime moved to a later second',
  );
  const lines = (await readFile(file, 'utf8')).trim().split('\n');
  assert.equal(lines.length, 1);
  const hash = (lines[0] ?? '').split(':')[1] ?? '';
  assert.ok(verifyShaCrypt('second', hash.replace('{SHA512-CRYPT}', '')));
  assert.ok(!hash.includes('second'), 'never plaintext');
  const leftovers = (await run('ls', ['-A', dir])).stdout.trim().split('\n');
  assert.deepEqual(leftovers, ['passwd'], 'no lock or temp files left behind');
});

test('20 parallel provisions in-process plus 2 other processes: every line valid', async (t) => {
  const dir = await tmp(t);
  const file = join(dir, 'passwd');
  await writeFile(file, '# header\n');
  const p = makePasswdFileProvisioner({ path: file });
  const script = `
    import { makePasswdFileProvisioner } from ${JSON.stringify(new URL('../../src/core/provision/passwd-file.ts', import.meta.url).href)};
    const p = makePasswdFileProvisioner({ path: process.argv[1] });
    await Promise.all(Array.from({ length: 10 }, (_, i) => p.provision('child' + process.argv[2] + '-' + i + '@example.org', 'pw' + i)));
  `;
  const child = (n: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const c = spawn(
        process.execPath,
        ['--import', 'tsx', '--input-type=module', '-e', script, file, String(n)],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let err = '';
      c.stderr.on('data', (d: Buffer) => (err += d.toString()));
      c.on('close', (code) =>
        code === 0 ? resolve() : reject(new Error(`child ${n} exited ${code}: ${err}`)),
      );
    });
  await Promise.all([
    child(1),
    child(2),
    ...Array.from({ length: 20 }, (_, i) => p.provision(`user${i}@example.org`, `secret-${i}`)),
  ]);
  const lines = (await readFile(file, 'utf8')).split('\n').filter(Boolean);
  assert.equal(lines[0], '# header');
  const users = new Map(lines.slice(1).map((l) => [l.split(':')[0], l.split(':')[1] ?? '']));
  assert.equal(users.size, 40);
  assert.equal(lines.length, 41);
  for (let i = 0; i < 20; i++) {
    const h = users.get(`user${i}@example.org`) ?? '';
    assert.ok(verifyShaCrypt(`secret-${i}`, h.replace('{SHA512-CRYPT}', '')), `user${i}`);
  }
  for (const n of [1, 2])
    for (let i = 0; i < 10; i++) assert.ok(users.has(`child${n}-${i}@example.org`));
});

test('a stale lock of a dead process is taken over; a live one times out', async (t) => {
  const dir = await tmp(t);
  const file = join(dir, 'passwd');
  const dead = spawn(process.execPath, ['-e', '0']);
  await new Promise((r) => dead.on('close', r));
  const { hostname } = await import('node:os');
  await writeFile(`${file}.lock`, `${dead.pid} ${hostname()} 2020-01-01T00:00:00Z\n`);
  await makePasswdFileProvisioner({ path: file }).provision('a@x.org', 'pw');
  assert.match(await readFile(file, 'utf8'), /^a@x\.org:\{SHA512-CRYPT\}/);
  await writeFile(`${file}.lock`, `${process.pid} ${hostname()} now\n`);
  await assert.rejects(
    makePasswdFileProvisioner({ path: file, lockTimeoutMs: 150 }).provision('b@x.org', 'pw'),
    /held by another writer/,
  );
});

test('command provisioner: address as last argument, password on stdin only', async (t) => {
  const dir = await tmp(t);
  const out = join(dir, 'out');
  const p = makeCommandProvisioner({
    command: ['sh', '-c', 'read -r pw; printf "%s|%s|%s\\n" "$1" "$pw" "$#" >> "$0"', out],
  });
  await p.provision('u@example.org', 's3cr3t pass');
  assert.equal(await readFile(out, 'utf8'), 'u@example.org|s3cr3t pass|1\n');

  const failing = makeCommandProvisioner({
    command: ['sh', '-c', 'read -r pw; echo "cannot create $1 with $pw" >&2; exit 3', 'sh'],
  });
  await assert.rejects(failing.provision('v@example.org', 'hunter2'), (err: unknown) => {
    assert.ok(err instanceof ProvisionError);
    assert.match(err.message, /exited with 3: cannot create v@example.org with \*\*\*/);
    assert.doesNotMatch(err.message, /hunter2/);
    return true;
  });
  const slow = makeCommandProvisioner({
    command: ['sh', '-c', 'sleep 5; true', 'sh'],
    timeoutMs: 100,
  });
  const t0 = Date.now();
  await assert.rejects(slow.provision('w@example.org', 'pw'), /timed out after 100 ms/);
  assert.ok(Date.now() - t0 < 2500, 'the script and its children were stopped');
  await assert.rejects(
    makeCommandProvisioner({ command: ['/nonexistent/cmd'] }).provision('x@y', 'z'),
    (e: unknown) => e instanceof ProvisionError && e.config,
  );
});

test('waitForLogin: first retry after ~1.1 s, then backoff, then a clear timeout', async () => {
  let clock = 0;
  const sleeps: number[] = [];
  const sleep = async (ms: number): Promise<void> => {
    sleeps.push(ms);
    clock += ms;
  };
  let calls = 0;
  const res = await waitForLogin(async () => ++calls === 3, { sleep, now: () => clock });
  assert.deepEqual(sleeps, [1100, 2200]);
  assert.deepEqual(res, { attempts: 3, waitedMs: 3300 });

  sleeps.length = 0;
  clock = 0;
  await assert.rejects(
    waitForLogin(async () => false, { sleep, now: () => clock, timeoutMs: 10_000 }),
    /still refuses the new password after 5 attempts in 10 s/,
  );
  assert.deepEqual(sleeps, [1100, 2200, 4000, 2700]);
  await assert.rejects(
    waitForLogin(async () => {
      throw new Error('ECONNREFUSED');
    }),
    /ECONNREFUSED/,
  );
});

test('the owner of an existing passwd-file is kept (root only: needs chown)', async (t) => {
  if (process.getuid?.() !== 0) {
    t.skip('not running as root: cannot hand the file to another owner');
    return;
  }
  const dir = await tmp(t);
  const file = join(dir, 'passwd');
  await writeFile(file, 'x@y:{PLAIN}z::::::\n', { mode: 0o640 });
  await chown(file, 8, 8);
  await makePasswdFileProvisioner({ path: file }).provision('a@b.org', 'pw');
  const st = await stat(file);
  assert.deepEqual([st.uid, st.gid, st.mode & 0o777], [8, 8, 0o640]);
  assert.match(await readFile(file, 'utf8'), /^x@y:\{PLAIN\}z::::::\na@b\.org:\{SHA512-CRYPT\}/);
});
