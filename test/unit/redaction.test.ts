import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  createLogger,
  memorySink,
  redact,
  redactString,
  REDACTED,
} from '../../src/core/log/index.js';

const PW = 'Canary-pw-42';
const PLAIN = Buffer.from(`\0alice@example.org\0${PW}`).toString('base64');

describe('redaction at the logger', () => {
  it('cuts secrets out of protocol lines', () => {
    const cases: Array<[string, string]> = [
      [`a1 LOGIN alice ${PW}`, 'a1 LOGIN alice [redacted]'],
      [`a1 login "alice" "${PW} with space"`, 'a1 login "alice" [redacted]'],
      [`a1 LOGIN {5}`, 'a1 LOGIN {5}'],
      [`a2 AUTHENTICATE PLAIN ${PLAIN}`, 'a2 AUTHENTICATE PLAIN [redacted]'],
      [`AUTH PLAIN ${PLAIN}`, 'AUTH PLAIN [redacted]'],
      [`PASS ${PW}`, 'PASS [redacted]'],
      [`pass ${PW} trailing`, 'pass [redacted]'],
      [PLAIN, REDACTED],
    ];
    for (const [input, want] of cases) assert.equal(redactString(input), want, input);
  });

  it('leaves ordinary text alone', () => {
    for (const s of [
      'destination',
      'migrated',
      'aB3dE5fG',
      'imap alice@example.org -> source (first-login)',
      'a1 SELECT INBOX',
    ]) {
      assert.equal(redactString(s), s);
    }
  });

  it('replaces secret-named fields at any depth, and base64 in wire fields', () => {
    const out = redact({
      user: 'alice',
      password: PW,
      nested: {
        pass: PW,
        passwordFile: '/etc/x',
        list: [{ secret: 'x' }],
        line: 'c2VjcmV0cGFzcw==',
      },
      credentials: { kid: 'k', data: 'x' },
      err: Object.assign(new Error(`LOGIN alice ${PW}`), { code: 'EAUTH' }),
      buf: Buffer.from(PW),
    }) as Record<string, unknown>;
    const text = JSON.stringify(out);
    assert.ok(!text.includes(PW), text);
    assert.ok(!text.includes('c2VjcmV0cGFzcw=='), text);
    assert.equal(out.user, 'alice');
    assert.equal((out.err as { code: string }).code, 'EAUTH');
  });

  it('the logger redacts whatever a call site passes, in JSON and in human form', () => {
    for (const format of ['json', 'human'] as const) {
      const sink = memorySink();
      const log = createLogger({ sink, format, level: 'debug' }).child({ session: 's1' });
      log.info(`client sent a1 LOGIN alice ${PW}`, {
        password: PW,
        line: `PASS ${PW}`,
        sasl: PLAIN,
      });
      log.debug('payload', { data: PLAIN });
      assert.equal(sink.lines.length, 2);
      assert.ok(!sink.text().includes(PW), sink.text());
      assert.ok(!sink.text().includes(PLAIN), sink.text());
      assert.ok(sink.text().includes('s1'));
      if (format === 'json') for (const l of sink.lines) JSON.parse(l);
    }
  });

  it('levels filter, and a throwing sink never throws into the caller', () => {
    const sink = memorySink();
    const log = createLogger({ sink, format: 'json', level: 'warn' });
    log.info('hidden');
    log.warn('shown');
    assert.equal(sink.lines.length, 1);
    const bad = createLogger({
      sink: {
        write: () => {
          throw new Error('disk full');
        },
      },
      format: 'json',
    });
    assert.doesNotThrow(() => bad.error('x'));
  });
});

describe('log messages written in the code', () => {
  // The wire rules look for protocol lines anywhere in a string, so a message such as
  // "login could not be checked" lost its end ("login could [redacted]"). Every message
  // literal in src/ must come out of redaction as written.
  it('survive redaction unchanged', () => {
    const root = fileURLToPath(new URL('../../src', import.meta.url));
    const call = /\b(?:logger|log)\.(?:debug|info|warn|error)\(\s*'((?:[^'\\]|\\.)*)'/g;
    const files = readdirSync(root, { recursive: true, encoding: 'utf8' }).filter((f) =>
      /\.tsx?$/.test(f),
    );
    const messages = files.flatMap((f) =>
      [...readFileSync(join(root, f), 'utf8').matchAll(call)].map((m) => m[1]!),
    );
    assert.ok(messages.length > 30, `found only ${messages.length} log messages`);
    assert.deepEqual(
      messages.filter((m) => redactString(m) !== m),
      [],
    );
  });
});
