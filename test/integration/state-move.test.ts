/**
 * `state export` / `state import` in core: a JSON state moved to a real PostgreSQL and back
 * (test/support/postgres.ts), every record field, sealed credentials byte for byte, side
 * files (UID maps, UIDL map, handover marker) and counts; --merge; and dumps cut short or
 * damaged anywhere are refused without a single write.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { OperatorError } from '../../src/core/errors.js';
import { generateKeyFile, loadKeyring, openText, seal } from '../../src/core/state/crypto.js';
import { openJsonStore } from '../../src/core/state/json-store.js';
import { openPgStore } from '../../src/core/state/pg-store.js';
import { sideFilePath, writeSideFile } from '../../src/core/state/side-files.js';
import type { AccountRecord, StateStore } from '../../src/core/state/types.js';
import { exportStateToFile, importState } from '../../src/core/state-move/index.js';
import { startPostgres, type PostgresInstance } from '../support/postgres.js';

const N = 1_234; // more than two pages of 500

async function fill(store: StateStore, keyFile: string): Promise<void> {
  const keyring = loadKeyring(keyFile);
  for (let i = 0; i < N; i++) {
    const address = `user${String(i).padStart(5, '0')}@example.org`;
    const states = ['unknown', 'captured', 'transferring', 'migrated', 'failed', 'excluded'];
    const rec: Partial<AccountRecord> = {
      state: states[i % states.length] as AccountRecord['state'],
      updatedAt: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
      firstSeen: '2025-12-01T10:00:00.000Z',
      errors: i % 7 === 0 ? [{ at: '2026-01-02T00:00:00.000Z', cause: 'auth', detail: 'ü' }] : [],
    };
    if (i % 2 === 0) rec.credentials = seal(keyring, `pw-${i}-€`, address);
    if (i % 5 === 0) {
      const side = sideFilePath(store, address, 'uidmap INBOX');
      await writeSideFile(side.absolute, {
        uids: [
          [1, 101],
          [2, 102 + i],
        ],
      });
      await store.side.write(address, 'pop3-uidls', { version: 1, pairs: [['d1', `s${i}`]] });
      if (i % 10 === 0) await store.side.write(address, 'handed over', { at: 'then' });
      rec.folders = {
        INBOX: {
          source: 'INBOX',
          destination: 'INBOX',
          uidValidity: 7,
          lastUid: 2,
          highestModseq: '12345678901234567890',
          messages: 2,
          bytes: 2048,
          copied: 2,
          skipped: 0,
          failed: 0,
          uidMap: side.relative,
          updatedAt: '2026-01-03T00:00:00.000Z',
        },
      };
      rec.transfer = {
        messages: 2,
        bytes: 2048,
        copied: 2,
        skipped: 0,
        failed: 0,
        lock: { at: 'x', ms: 5, passes: 2, copied: 1, bytes: 9, flags: 0, expunged: 0 },
      };
      rec.sweepAt = ['2026-01-04T00:00:00.000Z'];
      rec.pop3Uidls = { 'abc.def': 1 };
    }
    if (i % 11 === 0) rec.transferPhase = 'pre-copying';
    if (i % 3 === 0) Object.assign(rec, { imported: true, attempts: 3, reason: 'quota' });
    await store.upsert(address, rec);
  }
}

/** Every record, keys sorted, by address. */
async function snapshot(store: StateStore): Promise<Map<string, string>> {
  const sortKeys = (v: unknown): unknown =>
    v === null || typeof v !== 'object' || Array.isArray(v)
      ? Array.isArray(v)
        ? v.map(sortKeys)
        : v
      : Object.fromEntries(
          Object.keys(v)
            .sort()
            .map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]),
        );
  const out = new Map<string, string>();
  for (const r of await store.list()) out.set(r.address, JSON.stringify(sortKeys(r)));
  return out;
}

async function sideFiles(root: string, rel = ''): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  let entries;
  try {
    entries = await readdir(join(root, rel), { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) for (const [k, v] of await sideFiles(root, p)) out.set(k, v);
    else out.set(p, readFileSync(join(root, p), 'base64'));
  }
  return out;
}

function code(c: string): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof OperatorError, String(err));
    assert.equal(err.code, c, err.message);
    return true;
  };
}

describe('state export / import (JSON -> PostgreSQL -> JSON)', () => {
  let dir: string;
  let db: PostgresInstance;
  let original: Map<string, string>;
  let originalSide: Map<string, string>;
  /** each record's sealed secret as the source store wrote it */
  const sealed = new Map<string, string | undefined>();
  const keyFile = () => join(dir, 'key');

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ap-state-move-'));
    db = await startPostgres();
    await generateKeyFile(keyFile());
    const store = await openJsonStore(join(dir, 'a', 'state.json'), { saveDelayMs: 1 });
    await fill(store, keyFile());
    original = await snapshot(store);
    for (const r of await store.list())
      sealed.set(r.address, r.credentials && JSON.stringify(r.credentials));
    await store.close();
    originalSide = await sideFiles(join(dir, 'a', 'state-data'));
    assert.equal(original.size, N);
    assert.equal(originalSide.size, 2 * Math.ceil(N / 5) + Math.ceil(N / 10));
  });

  after(async () => {
    await db?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('moves every record, sealed secret and side file there and back, verified', async () => {
    const source = await openJsonStore(join(dir, 'a', 'state.json'), { readOnly: true });
    const out = await exportStateToFile(source, join(dir, 'one.jsonl'));
    await source.close();
    assert.equal(out.records, N);
    assert.equal(out.sideFiles, Math.ceil(N / 5), 'the UID maps');
    assert.equal(out.sideData, Math.ceil(N / 5) + Math.ceil(N / 10), 'UIDL maps, markers');

    const pg = await openPgStore(db.url, { sideDir: join(dir, 'b', 'state-data') });
    const t0 = performance.now();
    const imported = await importState(pg, join(dir, 'one.jsonl'));
    console.log(
      `# import of ${N} records into PostgreSQL: ${Math.round(performance.now() - t0)} ms`,
    );
    assert.equal(imported.records, N);
    assert.equal(imported.written, N);
    assert.equal(imported.sideWritten, Math.ceil(N / 5));
    assert.equal(imported.sideDataWritten, out.sideData);
    assert.equal(imported.recordsDigest, out.recordsDigest);
    assert.equal(imported.rebased, false);
    assert.deepEqual(await snapshot(pg), original);
    assert.deepEqual(
      await sideFiles(join(dir, 'b', 'state-data')),
      new Map([...originalSide].filter(([k]) => k.includes('uidmap'))),
      'UID maps as files, side data in the database',
    );
    assert.deepEqual(await pg.side.read('user00010@example.org', 'pop3-uidls'), {
      version: 1,
      pairs: [['d1', 's10']],
    });
    assert.deepEqual(await pg.side.read('user00010@example.org', 'handed over'), { at: 'then' });
    assert.equal(await pg.side.read('user00005@example.org', 'handed over'), undefined);
    for (const [address, text] of sealed) {
      const have = (await pg.get(address))?.credentials;
      assert.equal(have && JSON.stringify(have), text, 'sealed secret byte for byte');
    }
    const alice = (await pg.get('user00000@example.org'))!;
    assert.equal(openText(loadKeyring(keyFile()), alice.credentials!, alice.address), 'pw-0-€');

    const back = await exportStateToFile(pg, join(dir, 'two.jsonl'));
    assert.equal(back.recordsDigest, out.recordsDigest);
    assert.equal(back.sideDigest, out.sideDigest);
    assert.equal(back.sideDataDigest, out.sideDataDigest);
    await pg.close();

    const json = await openJsonStore(join(dir, 'c', 'state.json'));
    const again = await importState(json, join(dir, 'two.jsonl'));
    assert.equal(again.written, N);
    await json.close();
    const reopened = await openJsonStore(join(dir, 'c', 'state.json'), { readOnly: true });
    assert.deepEqual(await snapshot(reopened), original, 'every field, after a reopen');
    for (const [address, text] of sealed) {
      const have = (await reopened.get(address))?.credentials;
      assert.equal(have && JSON.stringify(have), text, 'sealed secret byte for byte');
    }
    assert.equal([...sealed.values()].filter(Boolean).length, N / 2);
    await reopened.close();
    assert.deepEqual(await sideFiles(join(dir, 'c', 'state-data')), originalSide);
  });

  it('refuses a non-empty target; --merge skips identical records and refuses differing ones', async () => {
    const pg = await openPgStore(db.url, { sideDir: join(dir, 'b', 'state-data') });
    try {
      await assert.rejects(importState(pg, join(dir, 'one.jsonl')), code('EIMPORTNOTEMPTY'));
      const merged = await importState(pg, join(dir, 'one.jsonl'), { merge: true });
      assert.equal(merged.written, 0);
      assert.equal(merged.unchanged, N);
      assert.equal(merged.sideUnchanged, Math.ceil(N / 5));
      assert.equal(merged.sideDataWritten, 0);
      await pg.side.write('user00000@example.org', 'handed over', { at: 'other' });
      await assert.rejects(
        importState(pg, join(dir, 'one.jsonl'), { merge: true }),
        (err: unknown) =>
          code('EIMPORTCONFLICT')(err) &&
          /side data "handed over" of user00000@example\.org/.test((err as Error).message),
      );
      await pg.side.write('user00000@example.org', 'handed over', { at: 'then' });
      await pg.upsert('user00003@example.org', { reason: 'changed here' });
      await pg.remove('user00004@example.org');
      await assert.rejects(
        importState(pg, join(dir, 'one.jsonl'), { merge: true }),
        (err: unknown) =>
          code('EIMPORTCONFLICT')(err) && /user00003@example\.org/.test((err as Error).message),
      );
      assert.equal(await pg.get('user00004@example.org'), undefined, 'nothing written');
    } finally {
      await pg.close();
    }
  });

  it('PostgreSQL insertMany: records kept exactly (updatedAt too), all or none', async () => {
    const pg = await openPgStore(db.url, { sideDir: join(dir, 'b', 'state-data') });
    try {
      const rec: AccountRecord = {
        address: 'new@example.org',
        state: 'failed',
        updatedAt: '2020-02-02T02:02:02.000Z',
        errors: [],
        folders: {},
        credentials: { kid: 'k', iv: 'aXY=', tag: 'dGFn', data: 'ZA==' },
      };
      const clash = { ...rec, address: 'user00001@example.org' };
      await assert.rejects(pg.insertMany!([rec, clash]), /duplicate key|unique/);
      assert.equal(await pg.get('new@example.org'), undefined, 'none of the batch');
      await pg.insertMany!([rec]);
      assert.deepEqual(await pg.get('new@example.org'), rec);
      await pg.remove('new@example.org');
    } finally {
      await pg.close();
    }
  });

  it('a side folder named otherwise: uidMap paths are re-based onto it', async () => {
    const store = await openJsonStore(join(dir, 'd', 'other.json'));
    const r = await importState(store, join(dir, 'one.jsonl'));
    assert.equal(r.rebased, true);
    const rec = (await store.get('user00005@example.org'))!;
    assert.match(rec.folders.INBOX!.uidMap!, /^other-data\//);
    await store.close();
    assert.deepEqual(await sideFiles(join(dir, 'd', 'other-data')), originalSide);
  });

  it('a dump cut anywhere or damaged is refused, and nothing is written', async () => {
    const whole = readFileSync(join(dir, 'one.jsonl'));
    const cuts = [
      0,
      1,
      whole.indexOf(10) + 1,
      whole.length - 1,
      whole.lastIndexOf(10, whole.length - 2) + 1,
    ];
    for (let i = 0; i < 40; i++) cuts.push(Math.floor(Math.random() * whole.length));
    const target = await openJsonStore(join(dir, 'e', 'state.json'));
    try {
      for (const cut of cuts) {
        writeFileSync(join(dir, 'cut.jsonl'), whole.subarray(0, cut));
        await assert.rejects(
          importState(target, join(dir, 'cut.jsonl')),
          code('EDUMP'),
          `cut at ${cut}`,
        );
      }
      const text = whole.toString('utf8');
      const damaged = [
        text.replace('"state":"captured"', '"state":"migrated"'),
        text.replace('pop3-uidls', 'pop3-uidlz'),
        text.replace(
          /"data":"([A-Za-z0-9+/])/,
          (_m, c: string) => `"data":"${c === 'A' ? 'B' : 'A'}`,
        ),
        `${text}{"record":{}}\n`,
      ];
      for (const bad of damaged) {
        assert.notEqual(bad, text);
        writeFileSync(join(dir, 'bad.jsonl'), bad);
        await assert.rejects(importState(target, join(dir, 'bad.jsonl')), code('EDUMP'));
      }
      assert.equal(await target.count(), 0);
    } finally {
      await target.close();
    }
    assert.equal((await sideFiles(join(dir, 'e', 'state-data'))).size, 0);
  });
});
