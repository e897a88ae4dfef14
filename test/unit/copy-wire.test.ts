import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { chunkUidSets } from '../../src/core/transfer/copy/fetch-stream.js';
import { parseFetch } from '../../src/core/transfer/copy/mailbox.js';
import {
  compressSet,
  expandSet,
  parseResponseCode,
  ResponseReader,
  WireError,
  type RawResponse,
} from '../../src/core/transfer/copy/wire.js';

function read(chunks: (string | Buffer)[]): RawResponse[] {
  const out: RawResponse[] = [];
  const r = new ResponseReader((x) => out.push(x));
  for (const c of chunks) r.push(Buffer.isBuffer(c) ? c : Buffer.from(c, 'latin1'));
  return out;
}

describe('ResponseReader', () => {
  test('a FETCH literal arrives byte for byte, however the stream is cut', () => {
    const body = Buffer.from('Subject: x\r\n\r\n\u0000\u00ff binary \r\n{5}\r\n', 'latin1');
    const wire = Buffer.concat([
      Buffer.from(
        `* 3 FETCH (UID 42 FLAGS (\\Seen $Kw) INTERNALDATE " 7-Jan-2024 10:00:00 +0100" BODY[] {${body.length}}\r\n`,
      ),
      body,
      Buffer.from(')\r\nC1 OK done\r\n'),
    ]);
    for (let cut = 1; cut < wire.length; cut += 7) {
      const out = read([wire.subarray(0, cut), wire.subarray(cut)]);
      assert.equal(out.length, 2);
      const f = parseFetch(out[0]!);
      assert.equal(f?.uid, 42);
      assert.deepEqual(f?.flags, ['\\Seen', '$Kw']);
      assert.equal(f?.internalDate, ' 7-Jan-2024 10:00:00 +0100');
      assert.ok(Buffer.isBuffer(f?.body) && f.body.equals(body));
    }
  });

  test('an endless line is refused', () => {
    const r = new ResponseReader(() => undefined, { maxLineBytes: 100, maxLiteralBytes: 1000 });
    assert.throws(() => r.push(Buffer.alloc(200, 0x41)), WireError);
  });

  test('a literal over the limit is refused before any memory is taken', () => {
    const r = new ResponseReader(() => undefined, { maxLineBytes: 100, maxLiteralBytes: 1000 });
    assert.throws(() => r.push(Buffer.from('* 1 FETCH (BODY[] {999999999999}\r\n')), WireError);
  });
});

describe('sets and codes', () => {
  test('compress and expand sequence sets', () => {
    assert.equal(compressSet([5, 1, 2, 3, 9, 10]), '1:3,5,9:10');
    assert.deepEqual(expandSet('1:3,5,10:9'), [1, 2, 3, 5, 9, 10]);
  });
  test('UID sets are split to bounded command lines', () => {
    const uids = Array.from({ length: 5000 }, (_, i) => i * 2 + 1);
    const sets = chunkUidSets(uids, 1000);
    assert.ok(sets.every((s) => s.length <= 1000));
    assert.deepEqual(sets.flatMap(expandSet), uids);
  });
  test('response codes', () => {
    assert.deepEqual(parseResponseCode('[APPENDUID 38505 3955:3957] Done'), {
      code: { name: 'APPENDUID', args: '38505 3955:3957' },
      text: 'Done',
    });
    assert.deepEqual(parseResponseCode('plain text'), { text: 'plain text' });
  });
});
