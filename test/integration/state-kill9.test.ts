/**
 * kill -9 at random moments while a child process updates and saves the store: after
 * every kill the store must open (taking over the stale lock), be a complete document,
 * hold one consistent snapshot, and never go backwards.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { openJsonStore } from '../../src/core/state/json-store.js';
import { killWriter, spawnWriter, tempDir } from '../support/state-helpers.js';
import { COUNTER, FILLER, GROUP, groupAddress } from '../support/state-writer.js';

const ROUNDS = 25;
/** No new round starts after this, so the test stays under 30 s on a loaded machine. */
const DEADLINE_MS = 22_000;
const MIN_ROUNDS = 5;

test('the store survives kill -9 at random moments', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'state.json');
  const started = Date.now();
  let last = 0;
  let advanced = 0;
  let takeovers = 0;
  let loopRounds = 0;
  let round = 0;

  for (; round < ROUNDS && Date.now() - started < DEADLINE_MS; round++) {
    const w = spawnWriter('loop', file);
    try {
      // Most rounds kill inside the write loop; every fifth one during startup (lock, load).
      if (round % 5 === 4) await sleep(20 + Math.random() * 200);
      else {
        const ready = await w.ready;
        loopRounds++;
        assert.equal(
          Number(ready.split(' ')[1]),
          last,
          'the child continues from the last saved value',
        );
        await sleep(20 + Math.random() * 280);
      }
    } finally {
      await killWriter(w);
    }

    const warnings: string[] = [];
    const store = await openJsonStore(file, { onWarning: (m) => warnings.push(m) });
    try {
      takeovers += warnings.length;
      assert.ok(
        warnings.every((m) => /stale lock .* is not running/.test(m)),
        warnings.join('\n'),
      );
      const counter = (await store.get(COUNTER))?.attempts ?? 0;
      assert.ok(counter >= last, `round ${round}: counter went back from ${last} to ${counter}`);
      if (counter > last) advanced++;
      last = counter;
      if ((await store.count()) > 0) {
        assert.equal(
          await store.count(),
          FILLER + (counter > 0 ? GROUP + 1 : 0),
          `round ${round}: account count`,
        );
        for (let i = 0; i < GROUP && counter > 0; i++) {
          assert.equal(
            (await store.get(groupAddress(i)))?.attempts,
            counter,
            `round ${round}: a mixed snapshot`,
          );
        }
      }
      const leftovers = readdirSync(dir).filter((n) => n.includes('.tmp') || n.includes('.stale-'));
      assert.deepEqual(leftovers, [], 'temp files of killed writers are cleaned up at open');
    } finally {
      await store.close();
    }
  }

  t.diagnostic(
    `${round} kills in ${Date.now() - started} ms; counter ${last}; ` +
      `${advanced} rounds advanced; ${takeovers} lock takeovers`,
  );
  assert.ok(round >= MIN_ROUNDS, `only ${round} rounds before the deadline`);
  assert.ok(advanced >= loopRounds / 3, `the writer made progress in only ${advanced} rounds`);
  assert.ok(takeovers >= loopRounds, 'every kill of a running writer left a lock to take over');
});
