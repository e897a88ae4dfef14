/**
 * Lists the functions over MAX_FUNCTION_LINES and the files over MAX_FILE_LINES in
 * src/core (style.md: long logic reads as named phases; no god-files). A function's lines
 * run from its first to its last line, nested functions included: a factory that returns
 * twenty closures is one long function to read.
 *
 * Usage: node --import tsx scripts/code-size.ts [--report-only <path prefix>]...
 * Exits 1 when something is over, unless every finding is under a --report-only prefix
 * (printed, not counted: work known to be under way elsewhere).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';

export const MAX_FUNCTION_LINES = 120;
export const MAX_FILE_LINES = 400;

export interface Finding {
  file: string;
  /** the function's name, or undefined for the whole file */
  name?: string;
  line: number;
  lines: number;
}

function sourceFiles(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) sourceFiles(p, out);
    else if (/\.tsx?$/.test(name) && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

function functionName(node: ts.Node): string {
  const named = node as ts.Node & { name?: ts.Node };
  if (named.name && ts.isIdentifier(named.name)) return named.name.text;
  if (ts.isConstructorDeclaration(node)) return 'constructor';
  const parent = node.parent;
  if (ts.isVariableDeclaration(parent) && ts.isIdentifier(parent.name)) return parent.name.text;
  if (ts.isPropertyAssignment(parent) && ts.isIdentifier(parent.name)) return parent.name.text;
  if (ts.isPropertyDeclaration(parent) && ts.isIdentifier(parent.name)) return parent.name.text;
  return '(anonymous)';
}

/** The findings of one file's text. */
export function measure(file: string, text: string): Finding[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const out: Finding[] = [];
  const fileLines = sf.getLineAndCharacterOfPosition(text.trimEnd().length).line + 1;
  if (fileLines > MAX_FILE_LINES) out.push({ file, line: 1, lines: fileLines });
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const start = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
      const end = sf.getLineAndCharacterOfPosition(node.getEnd()).line;
      const lines = end - start + 1;
      if (lines > MAX_FUNCTION_LINES)
        out.push({ file, name: functionName(node), line: start + 1, lines });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

function main(argv: string[]): number {
  const reportOnly: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--report-only' && argv[i + 1]) reportOnly.push(argv[++i]!);
    else {
      console.error(`code-size: unknown argument ${argv[i]}`);
      return 2;
    }
  }
  const root = process.cwd();
  const findings = sourceFiles(join(root, 'src/core')).flatMap((f) =>
    measure(relative(root, f), readFileSync(f, 'utf8')),
  );
  let failing = 0;
  for (const f of findings) {
    const known = reportOnly.some((p) => f.file.startsWith(p));
    if (!known) failing++;
    const what = f.name
      ? `function ${f.name} has ${f.lines} lines (max ${MAX_FUNCTION_LINES})`
      : `file has ${f.lines} lines (max ${MAX_FILE_LINES})`;
    console.log(`${f.file}:${f.line}: ${what}${known ? ' [reported only]' : ''}`);
  }
  if (failing > 0)
    console.error(`code-size: ${failing} over the limits; split them into named phases`);
  return failing > 0 ? 1 : 0;
}

if (import.meta.url === `file://${process.argv[1]}`) process.exitCode = main(process.argv.slice(2));
