/**
 * Reading a dump (dump-format.ts) line by line, checking every line as it comes and, at the
 * end line, the counts and digests. Nothing here writes: import.ts reads a dump through
 * once to check it whole before it changes anything, then again to write.
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { OperatorError } from '../errors.js';
import { LineTooLongError, readLineBatches } from '../state/line-reader.js';
import type { AccountRecord } from '../state/types.js';
import {
  canonicalJson,
  DUMP_FORMAT,
  DUMP_VERSION,
  recordDigestText,
  recordProblem,
  SetDigest,
  sideDigestText,
  sideDataProblem,
  sidePathProblem,
  type DumpEnd,
  type DumpHeader,
  type SideDataEntry,
  type SideFile,
} from './dump-format.js';

export type DumpEntry =
  | { kind: 'record'; line: number; record: AccountRecord }
  | { kind: 'side'; line: number; file: SideFile }
  | { kind: 'sideData'; line: number; entry: SideDataEntry };

export interface CheckedDump {
  header: DumpHeader;
  end: DumpEnd;
}

/** A dump that is damaged, cut short or not a dump: nothing was imported from it. */
export class DumpError extends OperatorError {
  constructor(name: string, line: number | undefined, message: string) {
    super(
      `${name}${line === undefined ? '' : ` line ${line}`}: ${message}; nothing was imported`,
      'the dump is damaged or was cut short (an export or a copy that did not finish): ' +
        'run `autoport state export` again and import the new file',
      'EDUMP',
    );
  }
}

const MAX_LINE_BYTES = 256 << 20;

/**
 * Read the dump at `path` (called `name` in messages), handing `visit` its entries a
 * batch at a time, in order. Resolves with the header and end line once the whole dump
 * checked out; rejects with DumpError at the first line that does not.
 */
export async function readDump(
  path: string,
  name: string,
  visit?: (entries: DumpEntry[]) => Promise<void>,
): Promise<CheckedDump> {
  const state = new DumpState(name);
  const fh = await open(path, 'r').catch((err: NodeJS.ErrnoException) => {
    throw new OperatorError(
      `cannot read ${name}: ${err.code ?? err.message}`,
      'give the path of a dump written by `autoport state export` (--file)',
      'EDUMP',
      { cause: err },
    );
  });
  try {
    for await (const batch of readLineBatches(fh, { maxLineBytes: MAX_LINE_BYTES })) {
      if (batch.tail !== undefined)
        throw new DumpError(name, state.lineNo + 1, 'the last line is incomplete (cut short)');
      const entries: DumpEntry[] = [];
      for (const text of batch.lines) {
        const entry = state.take(text);
        if (entry) entries.push(entry);
      }
      if (visit && entries.length > 0) await visit(entries);
    }
  } catch (err) {
    if (err instanceof LineTooLongError)
      throw new DumpError(name, undefined, `a line longer than ${MAX_LINE_BYTES} bytes`);
    throw err;
  } finally {
    await fh.close();
  }
  return state.finish();
}

/** What reading has seen so far, and the checks of one line. */
class DumpState {
  lineNo = 0;
  private header: DumpHeader | undefined;
  private end: DumpEnd | undefined;
  private readonly body = createHash('sha256');
  private readonly records = new SetDigest();
  private readonly sides = new SetDigest();
  private readonly sideData = new SetDigest();
  private sideDataCount = 0;
  private recordCount = 0;
  private sideCount = 0;
  private readonly seen = new Set<string>();

  constructor(private readonly name: string) {}

  private fail(message: string): never {
    throw new DumpError(this.name, this.lineNo, message);
  }

  take(text: string): DumpEntry | undefined {
    this.lineNo++;
    if (this.end) this.fail('a line after the end line');
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      this.fail('not a line of JSON');
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value))
      this.fail('not a JSON object');
    const v = value as Record<string, unknown>;
    if (!this.header) {
      this.header = this.checkHeader(v);
      this.body.update(`${text}\n`);
      return undefined;
    }
    if ('end' in v) {
      this.end = v.end as DumpEnd;
      return undefined;
    }
    this.body.update(`${text}\n`);
    if ('record' in v) return this.takeRecord(v.record);
    if ('side' in v) return this.takeSide(v.side, v.data);
    if ('sideData' in v) return this.takeSideData(v.sideData);
    this.fail('neither a record, a side file nor the end line');
  }

  private checkHeader(v: Record<string, unknown>): DumpHeader {
    if (v.format !== DUMP_FORMAT)
      this.fail(`not an AutoPort state dump (no "format": "${DUMP_FORMAT}" header)`);
    if (v.version !== DUMP_VERSION)
      this.fail(`dump version ${String(v.version)}; this AutoPort reads version ${DUMP_VERSION}`);
    if (typeof v.sideFolder !== 'string' || typeof v.source !== 'string')
      this.fail('the header lacks its source or sideFolder');
    return v as unknown as DumpHeader;
  }

  private takeRecord(record: unknown): DumpEntry {
    const problem = recordProblem(record);
    if (problem) this.fail(`bad record: ${problem}`);
    const rec = record as AccountRecord;
    if (this.seen.has(rec.address)) this.fail(`${rec.address} comes twice`);
    this.seen.add(rec.address);
    this.records.add(recordDigestText(rec));
    this.recordCount++;
    return { kind: 'record', line: this.lineNo, record: rec };
  }

  private takeSideData(value: unknown): DumpEntry {
    const problem = sideDataProblem(value);
    if (problem) this.fail(`bad side data: ${problem}`);
    const entry = value as SideDataEntry;
    this.sideData.add(canonicalJson(entry));
    this.sideDataCount++;
    return { kind: 'sideData', line: this.lineNo, entry };
  }

  private takeSide(path: unknown, data: unknown): DumpEntry {
    const problem = sidePathProblem(path);
    if (problem) this.fail(`bad side file: ${problem}`);
    const bytes = typeof data === 'string' ? Buffer.from(data, 'base64') : undefined;
    if (!bytes || bytes.toString('base64') !== data) this.fail('side file data is not base64');
    const file: SideFile = { path: path as string, data: bytes };
    this.sides.add(sideDigestText(file));
    this.sideCount++;
    return { kind: 'side', line: this.lineNo, file };
  }

  finish(): CheckedDump {
    if (!this.header) throw new DumpError(this.name, undefined, 'the file is empty');
    const end = this.end;
    if (!end)
      throw new DumpError(
        this.name,
        undefined,
        `it ends after line ${this.lineNo} without its end line (cut short)`,
      );
    const expect: Array<[string, unknown, unknown]> = [
      ['records', end.records, this.recordCount],
      ['side files', end.sideFiles, this.sideCount],
      ['digest', end.digest, this.body.digest('hex')],
      ['records digest', end.recordsDigest, this.records.hex()],
      ['side files digest', end.sideDigest, this.sides.hex()],
      ['side data', end.sideData, this.sideDataCount],
      ['side data digest', end.sideDataDigest, this.sideData.hex()],
    ];
    for (const [what, said, found] of expect)
      if (said !== found)
        throw new DumpError(
          this.name,
          this.lineNo,
          `the end line says ${what} ${String(said)}, the dump has ${String(found)}`,
        );
    return { header: this.header, end };
  }
}
