/**
 * Text measured as a terminal draws it: a CJK character takes two cells, an emoji built
 * of several code points (a family joined by ZWJ, a flag, a skin tone) takes two, a
 * combining mark none, and colour codes none. Every table, the CLI's and the monitor's,
 * pads and cuts with these, so its columns line up whatever the folder names hold.
 */
import stringWidth from 'string-width';

/** the mark left where text was cut (one cell wide) */
export const ELLIPSIS = '\u2026';

/** CSI (colours, cursor) and OSC (hyperlinks) escape sequences: zero cells wide */
// eslint-disable-next-line no-control-regex -- matching ESC and BEL is the point
const ESCAPE = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)/g;

const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

/** cells `text` takes on a terminal */
export function displayWidth(text: string): number {
  return stringWidth(text);
}

interface Piece {
  text: string;
  /** an escape sequence: drawn as nothing, never cut */
  escape: boolean;
  width: number;
}

/** escape sequences and graphemes (a grapheme is never split, or a family emoji breaks) */
function pieces(text: string): Piece[] {
  const out: Piece[] = [];
  const visible = (s: string): void => {
    for (const { segment } of graphemes.segment(s))
      out.push({ text: segment, escape: false, width: stringWidth(segment) });
  };
  let at = 0;
  for (const m of text.matchAll(ESCAPE)) {
    visible(text.slice(at, m.index));
    out.push({ text: m[0], escape: true, width: 0 });
    at = m.index + m[0].length;
  }
  visible(text.slice(at));
  return out;
}

/**
 * `text` in at most `max` cells; when it is longer, cut at a grapheme boundary and end in
 * `mark` (one cell wide). Escape sequences after the cut are kept, so a colour is still
 * closed.
 */
export function truncate(text: string, max: number, mark = ELLIPSIS): string {
  if (max <= 0) return '';
  if (displayWidth(text) <= max) return text;
  let out = '';
  let used = 0;
  let cut = false;
  for (const p of pieces(text)) {
    if (p.escape) out += p.text;
    else if (cut) continue;
    else if (used + p.width > max - 1) {
      out += mark;
      cut = true;
    } else {
      out += p.text;
      used += p.width;
    }
  }
  return out;
}

/**
 * The longest head of `text` that fits in `width` cells (at least one grapheme, so a
 * caller that loops always moves on), and the rest.
 */
export function splitAtWidth(text: string, width: number): [string, string] {
  let head = '';
  let used = 0;
  let i = 0;
  const ps = pieces(text);
  for (; i < ps.length; i++) {
    const p = ps[i] as Piece;
    if (!p.escape && used + p.width > width && used > 0) break;
    head += p.text;
    used += p.width;
  }
  return [
    head,
    ps
      .slice(i)
      .map((p) => p.text)
      .join(''),
  ];
}

/** `text` filled with spaces to `width` cells, on the right (left-aligned) or the left */
export function pad(text: string, width: number, align: 'left' | 'right' = 'left'): string {
  const fill = ' '.repeat(Math.max(0, width - displayWidth(text)));
  return align === 'right' ? fill + text : text + fill;
}

/** line breaks and tabs in a cell would break the row: one space instead */
export function oneLine(text: string): string {
  return text.replace(/[\r\n\t]+/g, ' ');
}
