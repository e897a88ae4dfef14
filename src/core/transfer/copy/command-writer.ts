/**
 * How a command goes on the wire: text, and literals either synchronising (`{N}`, wait for
 * the server's "+" before the bytes) or non-synchronising (`{N+}`) when the server offers
 * LITERAL+, or LITERAL- for literals up to 4096 bytes (RFC 7888). A spilled message is
 * streamed from its file. Writes honour the socket's back-pressure.
 */
import { ImapError } from './errors.js';
import type { CommandPart } from './session-types.js';
import type { SpilledLiteral } from './spill.js';

/** Non-synchronising literals up to this size are allowed by LITERAL- (RFC 7888 4). */
const LITERAL_MINUS_MAX = 4096;

export interface WireIo {
  literalPlus: boolean;
  literalMinus: boolean;
  write(buf: Buffer): Promise<void>;
  /** resolves with the text of the server's next continuation request */
  continuation(): Promise<string>;
}

export async function writeCommand(
  io: WireIo,
  tag: string,
  parts: CommandPart[],
  saslResponse?: string,
): Promise<void> {
  let line = `${tag} `;
  for (const part of parts) {
    if (typeof part === 'string') {
      line += part;
      continue;
    }
    const size = part.literal.length;
    const nonSync = io.literalPlus || (io.literalMinus && size <= LITERAL_MINUS_MAX);
    line += nonSync ? `{${size}+}\r\n` : `{${size}}\r\n`;
    const wait = nonSync ? null : io.continuation();
    await io.write(Buffer.from(line, 'latin1'));
    line = '';
    if (wait) await wait;
    if (Buffer.isBuffer(part.literal)) await io.write(part.literal);
    else await writeFile(io, part.literal);
  }
  line += '\r\n';
  const wait = saslResponse !== undefined ? io.continuation() : null;
  await io.write(Buffer.from(line, 'latin1'));
  if (wait) {
    await wait;
    await io.write(Buffer.from(`${saslResponse}\r\n`, 'latin1'));
  }
}

async function writeFile(io: WireIo, lit: SpilledLiteral): Promise<void> {
  let sent = 0;
  for await (const chunk of lit.stream()) {
    await io.write(chunk as Buffer);
    sent += (chunk as Buffer).length;
  }
  if (sent !== lit.size) {
    throw new ImapError(
      'EPROTOCOL',
      `spill file ${lit.path} has ${sent} bytes, expected ${lit.size}`,
    );
  }
}
