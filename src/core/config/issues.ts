/**
 * Turns validation findings into lines an operator can act on:
 *   source.imap: "imap://x:99999" -- port out of range
 * One line per problem, all problems at once, secrets never echoed.
 */
import { z } from 'zod';
import { OperatorError } from '../errors.js';

export interface ConfigProblem {
  /** dotted key path, e.g. destination.master.passwordFile (list items as domains[2]) */
  path: string;
  /** the offending value as shown to the operator, or undefined when there is none to show */
  value?: string;
  problem: string;
}

const DASH = '\u2014';

export function formatProblem(p: ConfigProblem): string {
  return p.value === undefined
    ? `${p.path}: ${p.problem}`
    : `${p.path}: ${p.value} ${DASH} ${p.problem}`;
}

export class ConfigError extends OperatorError {
  override readonly name = 'ConfigError';

  constructor(
    public readonly file: string,
    public readonly problems: ConfigProblem[],
  ) {
    const head =
      problems.length === 1
        ? `config ${file} has a problem:`
        : `config ${file} has ${problems.length} problems:`;
    super(
      [head, ...problems.map((p) => `  ${formatProblem(p)}`)].join('\n'),
      `fix ${problems.length === 1 ? 'it' : 'them'} in ${file}, then run \`autoport check\``,
      'ECONFIG',
    );
  }

  /** the problem lines alone, for tests and --json */
  get lines(): string[] {
    return this.problems.map(formatProblem);
  }

  override toJSON(): { code: string; message: string; hint: string; problems: ConfigProblem[] } {
    return { ...super.toJSON(), problems: this.problems };
  }
}

const SECRET_KEY = /pass(word)?|secret|token/i;

export function pathToString(path: readonly (string | number)[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? part : `.${part}`;
  }
  return out || '(top level)';
}

/** A value as the operator wrote it, short, and never a secret. */
export function showValue(value: unknown, key?: string | number): string {
  if (value === undefined) return '(missing)';
  if (typeof key === 'string' && SECRET_KEY.test(key) && !/File$|Env$/.test(key)) return '(hidden)';
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 70 ? `${text.slice(0, 67)}...` : text;
}

function valueAt(root: unknown, path: readonly (string | number)[]): unknown {
  let cur: unknown = root;
  for (const part of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string | number, unknown>)[part];
  }
  return cur;
}

/** The object schema found at `path`, following the raw value through discriminated unions. */
function objectSchemaAt(
  schema: z.ZodTypeAny,
  path: readonly (string | number)[],
  raw: unknown,
): z.AnyZodObject | undefined {
  let cur: z.ZodTypeAny = schema;
  let value: unknown = raw;
  for (let i = 0; ; i++) {
    for (;;) {
      if (cur instanceof z.ZodOptional || cur instanceof z.ZodNullable) cur = cur.unwrap();
      else if (cur instanceof z.ZodDefault) cur = cur.removeDefault();
      else if (cur instanceof z.ZodEffects) cur = cur.innerType();
      else if (cur instanceof z.ZodDiscriminatedUnion) {
        const tag = (value as Record<string, unknown> | undefined)?.[cur.discriminator];
        const option = cur.optionsMap.get(tag as z.Primitive);
        if (!option) return undefined;
        cur = option;
      } else break;
    }
    if (i === path.length) return cur instanceof z.ZodObject ? cur : undefined;
    const part = path[i] as string | number;
    if (cur instanceof z.ZodObject)
      cur = (cur.shape as Record<string, z.ZodTypeAny>)[part] ?? z.never();
    else if (cur instanceof z.ZodArray) cur = cur.element;
    else return undefined;
    value = (value as Record<string | number, unknown> | undefined)?.[part];
  }
}

function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0] as number;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j] as number;
      prev[j] = Math.min(
        up + 1,
        (prev[j - 1] as number) + 1,
        diag + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
      diag = up;
    }
  }
  return prev[b.length] as number;
}

/** The known key closest to a typo, if it is close enough to be a typo at all. */
export function closestKey(typo: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = editDistance(typo.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(typo.length / 3)) ? best : undefined;
}

function unknownKeyProblem(key: string, known: string[]): string {
  if (/^(password|pass|secret)$/i.test(key)) {
    return 'passwords are not accepted inline; put it in a file (mode 0600) and use passwordFile, or name an environment variable with passwordEnv';
  }
  const near = closestKey(key, known);
  return near
    ? `unknown key; did you mean "${near}"?`
    : `unknown key; known keys here: ${known.join(', ')}`;
}

function typeName(t: string): string {
  return t === 'object' ? 'a mapping (key: value)' : t === 'array' ? 'a list' : `a ${t}`;
}

/** One ConfigProblem per zod issue (one per unknown key), in file order. */
export function problemsFromZod(
  error: z.ZodError,
  schema: z.ZodTypeAny,
  raw: unknown,
): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  for (const issue of error.issues) {
    const last = issue.path[issue.path.length - 1];
    if (issue.code === z.ZodIssueCode.unrecognized_keys) {
      const known = Object.keys(objectSchemaAt(schema, issue.path, raw)?.shape ?? {});
      for (const key of issue.keys) {
        const path = [...issue.path, key];
        out.push({
          path: pathToString(path),
          value: showValue(valueAt(raw, path), key),
          problem: unknownKeyProblem(key, known),
        });
      }
      continue;
    }
    const value = valueAt(raw, issue.path);
    let problem = issue.message;
    if (issue.code === z.ZodIssueCode.invalid_type) {
      if (value === undefined)
        problem = issue.message === 'Required' ? 'is required' : issue.message;
      else if (issue.message.startsWith('Expected '))
        problem = `must be ${typeName(issue.expected)}`;
    }
    const shown =
      (issue.code === z.ZodIssueCode.custom && (issue.params?.shown as string | undefined)) ||
      undefined;
    out.push({
      path: pathToString(issue.path),
      value: shown ? JSON.stringify(shown) : showValue(value, last),
      problem,
    });
  }
  return out;
}
