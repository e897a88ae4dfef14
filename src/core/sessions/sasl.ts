/**
 * SASL pieces the front-ends share: strict base64 (RFC 4648 4, no whitespace, padding
 * required) and the PLAIN message (RFC 4616 2). Only mechanisms that reveal the password
 * exist here, because only they can be relayed to the source (protocol-notes.md, "Logins").
 */

const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Decode a SASL response; "=" is the empty response (RFC 4959 3). undefined when invalid. */
export function decodeSasl(text: string): Buffer | undefined {
  if (text === '=') return Buffer.alloc(0);
  if (text === '' || !B64.test(text)) return undefined;
  return Buffer.from(text, 'base64');
}

export type PlainResult =
  { ok: true; user: string; password: string } | { ok: false; why: 'syntax' | 'authzid' };

/** authzid NUL authcid NUL passwd. An authzid other than the user is an impersonation request. */
export function parsePlain(msg: Buffer): PlainResult {
  const a = msg.indexOf(0);
  const b = a < 0 ? -1 : msg.indexOf(0, a + 1);
  if (a < 0 || b < 0 || msg.indexOf(0, b + 1) >= 0) return { ok: false, why: 'syntax' };
  const authzid = msg.subarray(0, a).toString('utf8');
  const user = msg.subarray(a + 1, b).toString('utf8');
  const password = msg.subarray(b + 1).toString('utf8');
  if (user === '') return { ok: false, why: 'syntax' };
  if (authzid !== '' && authzid !== user) return { ok: false, why: 'authzid' };
  return { ok: true, user, password };
}

/** CR, LF, NUL and other controls never belong in a user name. */
// eslint-disable-next-line no-control-regex
export const BAD_USER_CHARS = /[\u0000-\u001f\u007f]/;
