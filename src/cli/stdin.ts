/**
 * `--password-stdin`: the password comes on standard input (never on the command line,
 * where `ps` and shell history would show it). One trailing newline is dropped, so both
 * `printf '%s' "$PASSWORD" |` and `echo "$PASSWORD" |` work.
 */
import { OperatorError } from '../core/errors.js';

export async function readPasswordFromStdin(
  command: string,
  input: AsyncIterable<Buffer | string> = process.stdin,
): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of input) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c));
  const text = Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
  if (!text)
    throw new OperatorError(
      '--password-stdin got an empty password',
      `pipe the password in: printf '%s' "$PASSWORD" | autoport ${command} ... --password-stdin`,
      'EUSAGE',
    );
  return text;
}
