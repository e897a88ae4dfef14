import assert from 'node:assert/strict';
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  generateKeyFile,
  loadKeyring,
  open,
  openText,
  resealAll,
  rotateKeyFile,
  seal,
} from '../../src/core/state/crypto.js';
import { KeyFileError, SecretOpenError } from '../../src/core/state/errors.js';
import { openJsonStore } from '../../src/core/state/json-store.js';
import type { SealedSecret } from '../../src/core/state/types.js';
import { defer, tempDir } from '../support/state-helpers.js';

const PW = 'correct horse \u00e9\u00e8 battery staple';

function code(c: string) {
  return (err: unknown): boolean => {
    assert.equal((err as { code?: string }).code, c, String(err));
    return true;
  };
}

/** Flip one bit of a base64 field. */
function flip(b64: string, index = 0): string {
  const buf = Buffer.from(b64, 'base64');
  buf[index % buf.length] = (buf[index % buf.length] ?? 0) ^ 1;
  return buf.toString('base64');
}

test('generateKeyFile writes a 0600 key file and refuses to replace one unless forced', async (t) => {
  const path = join(tempDir(t), 'conf', 'autoport.key');
  const kid = await generateKeyFile(path);
  assert.equal(statSync(path).mode & 0o777, 0o600);
  const ring = loadKeyring(path);
  assert.equal(ring.current, kid);
  assert.equal(ring.keys.get(kid)?.length, 32);
  await assert.rejects(generateKeyFile(path), (err: unknown) => {
    assert.ok(err instanceof KeyFileError && err.code === 'EKEYEXISTS');
    assert.match(err.message, /--force/);
    return true;
  });
  assert.equal(loadKeyring(path).current, kid, 'refused generation left the file alone');
  const kid2 = await generateKeyFile(path, { force: true });
  assert.notEqual(kid2, kid);
  assert.equal(loadKeyring(path).current, kid2);
});

test('loadKeyring refuses a key file others can read, and says what to run', async (t) => {
  const path = join(tempDir(t), 'k');
  await generateKeyFile(path);
  for (const mode of [0o644, 0o640, 0o604, 0o660]) {
    chmodSync(path, mode);
    assert.throws(
      () => loadKeyring(path),
      (err: unknown) => {
        assert.ok(err instanceof KeyFileError && err.code === 'EKEYPERM');
        assert.ok(err.message.endsWith(`run: chmod 600 ${path}`), err.message);
        return true;
      },
    );
  }
  chmodSync(path, 0o400);
  assert.ok(loadKeyring(path).current);
  assert.throws(() => loadKeyring(join(tempDir(t), 'none')), code('EKEYMISSING'));
});

test('loadKeyring reports malformed lines by number without printing key material', (t) => {
  const dir = tempDir(t);
  const good = Buffer.alloc(32, 7).toString('base64');
  const cases: [string, RegExp][] = [
    [`# only a comment\n\n`, /holds no key/],
    [`k1:${good}\nnot a key line\n`, /line 2: bad key id/],
    [`k1:${Buffer.alloc(16).toString('base64')}\n`, /line 1: key is not 32 bytes/],
    [`k1:${good}\nk1:${good}\n`, /line 2: duplicate key id k1/],
    [`bad id!:${good}\n`, /line 1: bad key id/],
  ];
  for (const [i, [content, why]] of cases.entries()) {
    const path = join(dir, `k${i}`);
    writeFileSync(path, content, { mode: 0o600 });
    assert.throws(
      () => loadKeyring(path),
      (err: unknown) => {
        assert.ok(err instanceof KeyFileError && err.code !== 'EKEYPERM');
        assert.match(err.message, why);
        assert.ok(!err.message.includes(good), 'key material never appears in errors');
        return true;
      },
    );
  }
  const path = join(dir, 'ok');
  writeFileSync(
    path,
    `# header\n\n  k2:${good}  \r\nk1:${Buffer.alloc(32, 1).toString('base64')}\n`,
    { mode: 0o600 },
  );
  const ring = loadKeyring(path);
  assert.equal(ring.current, 'k2');
  assert.deepEqual([...ring.keys.keys()], ['k2', 'k1']);
});

test('seal/open round trip; every seal uses a fresh IV', async (t) => {
  const path = join(tempDir(t), 'k');
  await generateKeyFile(path);
  const ring = loadKeyring(path);
  const a = seal(ring, PW, 'u@example.org');
  const b = seal(ring, PW, 'u@example.org');
  assert.equal(a.kid, ring.current);
  assert.notEqual(a.iv, b.iv);
  assert.notEqual(a.data, b.data);
  assert.ok(!JSON.stringify(a).includes('horse'));
  assert.equal(openText(ring, a, 'u@example.org'), PW);
  assert.deepEqual(open(ring, b, 'u@example.org'), Buffer.from(PW));
  assert.equal(openText(ring, seal(ring, '', 'x'), 'x'), '');
});

test('tampering, another account, another key or an unknown key id never open', async (t) => {
  const dir = tempDir(t);
  await generateKeyFile(join(dir, 'k'));
  const ring = loadKeyring(join(dir, 'k'));
  const s = seal(ring, PW, 'u@example.org');
  const tampered: [string, SealedSecret, string][] = [
    ['data', { ...s, data: flip(s.data, 3) }, 'ESEALAUTH'],
    ['tag', { ...s, tag: flip(s.tag, 15) }, 'ESEALAUTH'],
    ['iv', { ...s, iv: flip(s.iv, 5) }, 'ESEALAUTH'],
    ['short iv', { ...s, iv: Buffer.alloc(8).toString('base64') }, 'ESEALFORMAT'],
    ['short tag', { ...s, tag: Buffer.alloc(4).toString('base64') }, 'ESEALFORMAT'],
    ['truncated', { ...s, data: s.data.slice(0, 8) }, 'ESEALAUTH'],
    ['kid', { ...s, kid: 'k-nope' }, 'EKEYUNKNOWN'],
  ];
  for (const [what, sealed, c] of tampered) {
    assert.throws(
      () => open(ring, sealed, 'u@example.org'),
      (err: unknown) => {
        assert.ok(err instanceof SecretOpenError, what);
        assert.equal(err.code, c, what);
        return true;
      },
    );
  }
  assert.throws(() => open(ring, s, 'other@example.org'), code('ESEALAUTH'));
  assert.throws(() => open(ring, s, 'U@example.org'), code('ESEALAUTH'), 'aad is exact');

  // Same key id, different key material (a key file regenerated by mistake).
  const other = join(dir, 'other');
  writeFileSync(other, `${ring.current}:${Buffer.alloc(32, 9).toString('base64')}\n`, {
    mode: 0o600,
  });
  assert.throws(() => open(loadKeyring(other), s, 'u@example.org'), code('ESEALAUTH'));
});

test('rotation: new key seals, old keys still open, resealAll moves secrets to the new key', async (t) => {
  const dir = tempDir(t);
  const keyPath = join(dir, 'k');
  const k1 = await generateKeyFile(keyPath);
  const ring1 = loadKeyring(keyPath);
  const store = await openJsonStore(join(dir, 'state.json'), { saveDelayMs: 60_000 });
  defer(t, () => store.close());
  for (const a of ['a@x', 'b@x', 'c@x'])
    await store.upsert(a, { state: 'captured', credentials: seal(ring1, `pw-${a}`, a) });
  await store.upsert('d@x', { state: 'unknown' });
  // A blob moved from another account: must be reported, not resealed, not fatal.
  await store.upsert('moved@x', { state: 'captured', credentials: seal(ring1, 'pw', 'a@x') });

  const k2 = await rotateKeyFile(keyPath);
  assert.notEqual(k2, k1);
  assert.equal(statSync(keyPath).mode & 0o777, 0o600);
  const ring2 = loadKeyring(keyPath);
  assert.equal(ring2.current, k2);
  assert.deepEqual([...ring2.keys.keys()], [k2, k1]);
  assert.equal(openText(ring2, (await store.get('a@x'))!.credentials!, 'a@x'), 'pw-a@x');
  assert.equal(seal(ring2, 'x', 'a@x').kid, k2);
  assert.equal(readFileSync(keyPath, 'utf8').match(/^# AutoPort/gm)?.length, 1, 'one header');

  await store.upsert('e@x', { state: 'captured', credentials: seal(ring2, 'pw-e@x', 'e@x') });
  const result = await resealAll(store, ring2);
  assert.equal(result.resealed, 3);
  assert.equal(result.unchanged, 1);
  assert.deepEqual(
    result.failed.map((f) => [f.address, f.code]),
    [['moved@x', 'ESEALAUTH']],
  );
  assert.equal(store.status().dirty, false, 'resealAll flushes');

  // Drop the old key: every resealed secret still opens.
  writeFileSync(
    keyPath,
    readFileSync(keyPath, 'utf8')
      .split('\n')
      .filter((l) => !l.startsWith(k1))
      .join('\n'),
  );
  const ring3 = loadKeyring(keyPath);
  assert.deepEqual([...ring3.keys.keys()], [k2]);
  for (const a of ['a@x', 'b@x', 'c@x', 'e@x']) {
    const rec = (await store.get(a))!;
    assert.equal(rec.credentials?.kid, k2);
    assert.equal(openText(ring3, rec.credentials!, rec.address), `pw-${a}`);
  }

  chmodSync(keyPath, 0o644);
  await assert.rejects(rotateKeyFile(keyPath), code('EKEYPERM'));
});
