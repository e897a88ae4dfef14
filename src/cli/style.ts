/**
 * Colour in human output: headers bold, status words green, yellow or red, and only where
 * a person reads a terminal. Piped output, NO_COLOR (https://no-color.org: set and not
 * empty) and --json get plain text, so scripts, logs and tests see the same bytes. The
 * renderers take a Style and default to `plain`; only the commands choose colour.
 */
import { Chalk } from 'chalk';

export type Tone = 'ok' | 'warn' | 'bad';

export interface Style {
  header(text: string): string;
  status(text: string, tone: Tone): string;
}

export const plain: Style = {
  header: (t) => t,
  status: (t) => t,
};

export function colourWanted(
  stream: { isTTY?: boolean },
  json: boolean,
  env: NodeJS.ProcessEnv = process.env,
): boolean {
  return stream.isTTY === true && !json && !env.NO_COLOR;
}

/** colour (16 basic colours, which every terminal maps to its own theme) or plain */
export function makeStyle(colour: boolean): Style {
  if (!colour) return plain;
  const c = new Chalk({ level: 1 });
  const tones: Record<Tone, (t: string) => string> = { ok: c.green, warn: c.yellow, bad: c.red };
  return { header: (t) => c.bold(t), status: (t, tone) => tones[tone](t) };
}

/** the style for output written to `stream` (stdout for the commands) */
export function styleFor(stream: { isTTY?: boolean }, json = false): Style {
  return makeStyle(colourWanted(stream, json));
}
