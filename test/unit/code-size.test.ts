/** scripts/code-size.ts: what counts as a long function or file in src/core. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_FILE_LINES, MAX_FUNCTION_LINES, measure } from '../../scripts/code-size.js';

/** a function of exactly `lines` lines (its first and last line included) */
const fn = (name: string, lines: number): string =>
  [`function ${name}() {`, ...Array.from({ length: lines - 2 }, (_, i) => `  f(${i});`), '}'].join(
    '\n',
  );

describe('code-size', () => {
  it('reports a function one line over the limit, not one at it', () => {
    const text = `${fn('atLimit', MAX_FUNCTION_LINES)}\n${fn('over', MAX_FUNCTION_LINES + 1)}\n`;
    const found = measure('x.ts', text);
    assert.deepEqual(
      found.map((f) => [f.name, f.lines]),
      [['over', MAX_FUNCTION_LINES + 1]],
    );
    assert.equal(found[0]!.line, MAX_FUNCTION_LINES + 1);
  });

  it('names arrows by their variable and counts nested functions in the outer one', () => {
    const inner = fn('inner', 10);
    const body = Array.from({ length: MAX_FUNCTION_LINES }, (_, i) => `  g(${i});`).join('\n');
    const text = `export const factory = () => {\n${inner}\n${body}\n};\n`;
    assert.deepEqual(
      measure('x.ts', text).map((f) => f.name),
      ['factory'],
    );
  });

  it('reports a file over the limit, not one at it', () => {
    const lines = (n: number): string => `${Array.from({ length: n }, () => 'x;').join('\n')}\n`;
    assert.deepEqual(measure('a.ts', lines(MAX_FILE_LINES)), []);
    assert.deepEqual(measure('b.ts', lines(MAX_FILE_LINES + 1)), [
      { file: 'b.ts', line: 1, lines: MAX_FILE_LINES + 1 },
    ]);
  });
});
