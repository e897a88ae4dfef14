/**
 * Modified UTF-7 for IMAP mailbox names (RFC 3501 section 5.1.3).
 *
 * Strict on purpose: a name that does not survive decode -> encode unchanged cannot be
 * copied byte-exactly, so we reject it with an error naming the problem instead of
 * guessing (iconv-style decoders silently keep or garble such names).
 *
 * Rules enforced (RFC 3501 5.1.3):
 * - printable US-ASCII 0x20-0x7e stands for itself, except "&" which is written "&-";
 * - everything else is UTF-16 in "modified BASE64" ("," instead of "/", no "=" padding)
 *   between "&" and "-";
 * - modified BASE64 MUST NOT encode printable US-ASCII, and an encoder produces one
 *   shifted run per stretch of non-ASCII, so "&AOQ-&AOQ-" is not canonical;
 * - the wire form itself is 7-bit printable ASCII only.
 */

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,';
const B64_INDEX = new Map<string, number>([...B64].map((c, i) => [c, i]));

export class MUtf7Error extends Error {
  constructor(
    public readonly input: string,
    public readonly problem: string,
  ) {
    super(`mailbox name ${JSON.stringify(input)} ${problem}`);
    this.name = 'MUtf7Error';
  }
}

function isDirect(code: number): boolean {
  return code >= 0x20 && code <= 0x7e;
}

function encodeRun(units: number[]): string {
  let out = '';
  let bits = 0;
  let acc = 0;
  for (const u of units) {
    acc = (acc << 16) | u;
    bits += 16;
    while (bits >= 6) {
      bits -= 6;
      out += B64[(acc >> bits) & 0x3f];
    }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) out += B64[(acc << (6 - bits)) & 0x3f];
  return out;
}

/** Encode a Unicode mailbox name for the wire. Throws MUtf7Error on a lone surrogate. */
export function encodeMUtf7(name: string): string {
  let out = '';
  let run: number[] = [];
  const flush = (): void => {
    if (run.length) {
      out += `&${encodeRun(run)}-`;
      run = [];
    }
  };
  for (let i = 0; i < name.length; i++) {
    const code = name.charCodeAt(i);
    if (code >= 0xd800 && code <= 0xdbff) {
      const next = name.charCodeAt(i + 1);
      if (!(next >= 0xdc00 && next <= 0xdfff)) {
        throw new MUtf7Error(name, `has a lone UTF-16 surrogate at position ${i}`);
      }
      run.push(code, next);
      i++;
      continue;
    }
    if (code >= 0xdc00 && code <= 0xdfff) {
      throw new MUtf7Error(name, `has a lone UTF-16 surrogate at position ${i}`);
    }
    if (isDirect(code)) {
      flush();
      out += code === 0x26 ? '&-' : name[i];
    } else {
      run.push(code);
    }
  }
  flush();
  return out;
}

function decodeRun(wire: string, b64: string, at: number): number[] {
  const units: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const c of b64) {
    const v = B64_INDEX.get(c);
    if (v === undefined) {
      throw new MUtf7Error(wire, `has "${c}" inside a modified BASE64 run at position ${at}`);
    }
    acc = ((acc << 6) | v) & 0x3fffff;
    bits += 6;
    if (bits >= 16) {
      bits -= 16;
      units.push((acc >> bits) & 0xffff);
    }
  }
  // RFC 3501 5.1.3 / RFC 2152: leftover bits are padding; more than 5 of them, or any
  // set bit, means the run was cut or was not produced by a conforming encoder.
  if (bits >= 6 || (acc & ((1 << bits) - 1)) !== 0) {
    throw new MUtf7Error(wire, `has a truncated or badly padded BASE64 run at position ${at}`);
  }
  return units;
}

/** Decode a wire name to Unicode. Throws MUtf7Error on anything a strict encoder would not produce. */
export function decodeMUtf7(wire: string): string {
  let out = '';
  let i = 0;
  while (i < wire.length) {
    const code = wire.charCodeAt(i);
    if (!isDirect(code)) {
      throw new MUtf7Error(
        wire,
        `has a character outside printable US-ASCII (0x${code.toString(16)}) at position ${i}`,
      );
    }
    if (code !== 0x26) {
      out += wire[i];
      i++;
      continue;
    }
    const end = wire.indexOf('-', i + 1);
    if (end < 0) throw new MUtf7Error(wire, `has "&" at position ${i} without a closing "-"`);
    if (end === i + 1) {
      out += '&';
      i = end + 1;
      continue;
    }
    const units = decodeRun(wire, wire.slice(i + 1, end), i);
    for (let k = 0; k < units.length; k++) {
      const u = units[k] as number;
      if (isDirect(u)) {
        throw new MUtf7Error(wire, `encodes printable ASCII in BASE64 at position ${i}`);
      }
      if (u >= 0xd800 && u <= 0xdbff) {
        const lo = units[k + 1];
        if (lo === undefined || lo < 0xdc00 || lo > 0xdfff) {
          throw new MUtf7Error(wire, `has a lone UTF-16 surrogate at position ${i}`);
        }
        out += String.fromCharCode(u, lo);
        k++;
        continue;
      }
      if (u >= 0xdc00 && u <= 0xdfff)
        throw new MUtf7Error(wire, `has a lone UTF-16 surrogate at position ${i}`);
      out += String.fromCharCode(u);
    }
    i = end + 1;
  }
  // Catches split runs ("&AOQ-&AOQ-") and any other non-canonical spelling.
  if (encodeMUtf7(out) !== wire) {
    throw new MUtf7Error(
      wire,
      'is not in canonical modified UTF-7 (an encoder would write it differently)',
    );
  }
  return out;
}

/** True when `wire` is canonical modified UTF-7. */
export function isValidMUtf7(wire: string): boolean {
  try {
    decodeMUtf7(wire);
    return true;
  } catch (err) {
    if (err instanceof MUtf7Error) return false;
    throw err;
  }
}
