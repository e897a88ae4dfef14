/**
 * The one table renderer measures cells as a terminal draws them: the test corpus's folder
 * names (CJK, umlauts) and emoji (a ZWJ family, a flag, a skin tone), combining marks and
 * colour codes must leave every row the same width and every column in line.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { stripVTControlCharacters } from 'node:util';
import { Chalk } from 'chalk';
import stringWidth from 'string-width';
import { formatRow, layoutColumns, type Column } from '../../src/tui/table.js';
import { renderTable } from '../../src/cli/table.js';
import { displayWidth, ELLIPSIS, pad, splitAtWidth, truncate } from '../../src/cli/text.js';
import { makeStyle, colourWanted, plain } from '../../src/cli/style.js';
import { standardCorpus } from '../support/corpus.js';

const FAMILY = '\u{1F468}\u200D\u{1F469}\u200D\u{1F467}\u200D\u{1F466}';
const EXTRA = [
  `${FAMILY} Familie`,
  '\u{1F4E5} Posteingang',
  '\u{1F1E9}\u{1F1EA} Flagge',
  '\u{1F44D}\u{1F3FD} ok',
  'Cafe\u0301 (combining accent)',
  '\u3042\u3044\u3046/\uD55C\uAD6D\uC5B4/\u4E2D\u6587',
  'Gro\u00DFe Dateien',
];
const NAMES = [...standardCorpus().folders.map((f) => f.path), ...EXTRA];
const colour = new Chalk({ level: 1 });

/** the terminal cell of every "|" marker on a line (colour codes take none) */
function markerCells(line: string): number[] {
  const text = stripVTControlCharacters(line);
  const cells: number[] = [];
  for (let i = text.indexOf('|'); i >= 0; i = text.indexOf('|', i + 1))
    cells.push(stringWidth(text.slice(0, i)));
  return cells;
}

/** every row as wide as the others, and each "|" column at the same cell on every row */
function assertAligned(out: string, markers: number): void {
  const lines = out.trimEnd().split('\n');
  const widths = new Set(lines.map((l) => stringWidth(l)));
  assert.equal(widths.size, 1, `rows of different widths:\n${out}`);
  // the header's underline has dashes where the markers are
  const at = lines.filter((l) => !/^-/.test(l)).map((l) => markerCells(l).join(','));
  assert.equal(new Set(at).size, 1, `columns out of line:\n${out}`);
  assert.equal(markerCells(lines[0] as string).length, markers);
}

describe('table widths', () => {
  it('has CJK, emoji, combining marks and a ZWJ family in the names it tests', () => {
    assert.ok(NAMES.some((n) => /\p{Script=Han}/u.test(n)));
    assert.equal(displayWidth('\u65e5\u672c\u8a9e'), 6);
    assert.equal(displayWidth(FAMILY), 2);
    assert.equal(displayWidth('Cafe\u0301'), 4);
    assert.equal(displayWidth(colour.red('FAIL')), 4);
  });

  it('lines up the corpus folder names, emoji and all', () => {
    const rows = NAMES.map((n, i) => [n, '|', String(i * 37), '|']);
    const out = renderTable(rows, { header: ['FOLDER', '|', 'MESSAGES', '|'] });
    assertAligned(out, 2);
    assert.match(out, /\u65e5\u672c\u8a9e/);
  });

  it('keeps columns in line when cells are coloured', () => {
    const style = makeStyle(true);
    const rows = NAMES.map((n, i) => [
      i % 2 ? colour.cyan(n) : n,
      '|',
      style.status(i % 3 ? 'migrated' : 'FAILED', i % 3 ? 'ok' : 'bad'),
      '|',
    ]);
    const out = renderTable(rows, {
      header: ['FOLDER', '|', 'STATE', '|'],
      headerStyle: style.header,
    });
    assert.ok(out.includes('\x1b['), 'the colours are there');
    assertAligned(out, 2);
  });

  it('cuts a column at its maximum by display width, with an ellipsis, never inside a grapheme', () => {
    const rows = NAMES.map((n) => [n, '|']);
    const out = renderTable(rows, { columns: [{ max: 9 }] });
    assertAligned(out, 1);
    for (const line of out.trimEnd().split('\n')) {
      const cell = line.slice(0, line.indexOf('|')).trimEnd();
      assert.ok(stringWidth(cell) <= 9, cell);
    }
    assert.match(out, new RegExp(`\\(combi${ELLIPSIS}|Cafe\u0301 \\(co${ELLIPSIS}`));
    // the family is 2 cells: kept whole or dropped whole, never a lone part of it
    for (const max of [1, 2, 3, 4]) {
      const cut = truncate(`${FAMILY} Familie`, max);
      assert.ok(stringWidth(cut) <= max, `${max}: ${cut}`);
      assert.ok(cut.startsWith(FAMILY) || !cut.includes('\u200D'), `${max}: ${cut}`);
    }
  });

  it('truncates coloured text by what shows and keeps the colour closed', () => {
    const cut = truncate(colour.red('\u65e5\u672c\u8a9e\u306e\u30d5\u30a9\u30eb\u30c0'), 7);
    assert.equal(stringWidth(cut), 7);
    assert.equal(stripVTControlCharacters(cut), `\u65e5\u672c\u8a9e${ELLIPSIS}`);
    assert.ok(cut.endsWith('\x1b[39m'), JSON.stringify(cut));
    assert.equal(truncate('short', 10), 'short');
    assert.equal(truncate('abc', 0), '');
  });

  it('wraps a CJK last column by display width', () => {
    const text = '\u65e5\u672c\u8a9e'.repeat(10);
    const out = renderTable([['key', text]], { maxWidth: 20 });
    for (const line of out.trimEnd().split('\n')) assert.ok(stringWidth(line) <= 20, line);
    assert.equal(out.replace(/[\s]|key/g, ''), text);
    const [head, rest] = splitAtWidth(`${FAMILY}${FAMILY}`, 3);
    assert.deepEqual([head, rest], [FAMILY, FAMILY]);
  });

  it('pads to display width on either side', () => {
    assert.equal(pad('\u65e5\u672c', 6), '\u65e5\u672c  ');
    assert.equal(pad('\u65e5\u672c', 6, 'right'), '  \u65e5\u672c');
  });

  it('draws the monitor table with the same widths', () => {
    const columns: Column<string>[] = [
      { title: 'FOLDER', width: 12, cell: (r) => r },
      { title: 'N', width: 3, align: 'right', cell: (r) => String(r.length) },
      { title: '|', width: 1, cell: () => '|' },
    ];
    const layout = layoutColumns(columns, 40);
    const lines = NAMES.map((n) => formatRow(layout, [n, String(n.length), '|']));
    assert.equal(new Set(lines.map((l) => markerCells(l).join(','))).size, 1, lines.join('\n'));
    assert.equal(new Set(lines.map((l) => stringWidth(l))).size, 1, lines.join('\n'));
  });
});

describe('colour', () => {
  it('only on a terminal, without NO_COLOR, and never with --json', () => {
    assert.equal(colourWanted({ isTTY: true }, false, {}), true);
    assert.equal(colourWanted({ isTTY: false }, false, {}), false);
    assert.equal(colourWanted({}, false, {}), false);
    assert.equal(colourWanted({ isTTY: true }, true, {}), false);
    assert.equal(colourWanted({ isTTY: true }, false, { NO_COLOR: '1' }), false);
    // no-color.org: an empty NO_COLOR does not count
    assert.equal(colourWanted({ isTTY: true }, false, { NO_COLOR: '' }), true);
    assert.equal(makeStyle(false), plain);
    assert.equal(plain.status('FAILED', 'bad'), 'FAILED');
    assert.notEqual(makeStyle(true).status('FAILED', 'bad'), 'FAILED');
  });
});
