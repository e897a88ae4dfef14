/**
 * The line reader under the snapshot and journal loads: lines split on LF bytes only, a
 * multi-byte character cut by a chunk boundary comes out whole, offsets are byte offsets,
 * an unterminated end is reported apart, and a runaway line is refused.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  LineTooLongError,
  offsetOf,
  readLineBatches,
  type LineBatch,
} from '../../src/core/state/line-reader.js';
import { defer, tempDir } from '../support/state-helpers.js';

async function batches(
  content: string,
  t: Parameters<typeof tempDir>[0],
  chunkBytes: number,
  maxLineBytes?: number,
): Promise<LineBatch[]> {
  const file = join(tempDir(t), 'lines');
  writeFileSync(file, content);
  const fh = await open(file, 'r');
  defer(t, () => fh.close());
  const out: LineBatch[] = [];
  for await (const b of readLineBatches(fh, { chunkBytes, maxLineBytes })) out.push(b);
  return out;
}

test('lines cut anywhere by chunks come out whole, with byte offsets', async (t) => {
  // "\u00e9" and "\u20ac" are 2 and 3 bytes; CR and U+2028 are not line ends
  const lines = ['caf\u00e9', '', '\u20ac\u20ac\u20ac x', 'a\rb\u2028c', 'end'];
  const content = `${lines.join('\n')}\ntorn \u00e9`;
  for (const chunk of [1, 2, 3, 5, 7, 1024]) {
    const got = await batches(content, t, chunk);
    assert.deepEqual(
      got.flatMap((b) => b.lines),
      lines,
      `chunks of ${chunk}`,
    );
    const last = got[got.length - 1]!;
    assert.equal(last.tail, 'torn \u00e9', `chunks of ${chunk}`);
    assert.equal(last.start, Buffer.byteLength(`${lines.join('\n')}\n`));
    let n = 0;
    for (const b of got) {
      for (let i = 0; i < b.lines.length; i++, n++) {
        const want = Buffer.byteLength(
          lines
            .slice(0, n)
            .map((l) => `${l}\n`)
            .join(''),
        );
        assert.equal(offsetOf(b, i), want, `offset of line ${n}, chunks of ${chunk}`);
      }
    }
  }
});

test('a line longer than the limit is refused instead of growing without bound', async (t) => {
  await assert.rejects(batches(`ok\n${'x'.repeat(100)}`, t, 16, 50), LineTooLongError);
  const fine = await batches(`ok\n${'x'.repeat(40)}\n`, t, 16, 50);
  assert.deepEqual(
    fine.flatMap((b) => b.lines),
    ['ok', 'x'.repeat(40)],
  );
});
