/**
 * INTERNALDATE for a message that came over POP3, which has none (RFC 1939).
 *
 * The issue asks for "the last Received: header". Each hop PREPENDS its Received
 * field (RFC 5321 4.4), so the one added last - when the message reached the source
 * mailbox server - is the TOP-most. Its date (after the last ";", RFC 5321 4.4
 * "Stamp") is the closest thing to the source's own arrival time, which is what
 * INTERNALDATE means (RFC 3501 2.3.3). When the top-most field has no readable date
 * we take the next one down, then the Date: header, then the time of the copy.
 */

export type DateSource = 'received' | 'date' | 'now';

/** The header section (up to the first empty line), bytes kept 1:1 as latin1. */
export function headerSection(message: Buffer): string {
  const crlf = message.indexOf('\r\n\r\n');
  const lf = message.indexOf('\n\n');
  let end = message.length;
  if (crlf >= 0) end = crlf;
  if (lf >= 0 && lf < end) end = lf;
  return message.subarray(0, end).toString('latin1');
}

/** Header fields in order, unfolded (RFC 5322 2.2.3), names lower-cased. */
export function headerFields(header: string): Array<{ name: string; value: string }> {
  const out: Array<{ name: string; value: string }> = [];
  for (const line of header.split(/\r?\n/)) {
    const last = out[out.length - 1];
    if (/^[ \t]/.test(line) && last) {
      last.value += line;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    out.push({ name: line.slice(0, colon).trim().toLowerCase(), value: line.slice(colon + 1) });
  }
  return out;
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

// RFC 5322 4.3 obs-zone. Military letters are "-0000" (unknown) per the RFC.
// prettier-ignore
const ZONES: Record<string, number> = {
  UT: 0, GMT: 0, Z: 0, UTC: 0,
  EST: -300, EDT: -240, CST: -360, CDT: -300, MST: -420, MDT: -360, PST: -480, PDT: -420,
};

function stripComments(text: string): string {
  let out = '';
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\\' && depth > 0) {
      i++;
      continue;
    }
    if (c === '(') depth++;
    else if (c === ')' && depth > 0) depth--;
    else if (depth === 0) out += c;
  }
  return out;
}

function zoneMinutes(zone: string | undefined): number | undefined {
  if (zone === undefined || zone === '') return 0;
  const m = /^([+-])(\d\d)(\d\d)$/.exec(zone);
  if (m) {
    const mins = Number(m[2]) * 60 + Number(m[3]);
    if (Number(m[3]) > 59) return undefined;
    return m[1] === '-' ? -mins : mins;
  }
  const z = zone.toUpperCase();
  if (z in ZONES) return ZONES[z];
  return /^[A-IK-Z]$/.test(z) ? 0 : undefined;
}

/**
 * RFC 5322 3.3 date-time, with the obsolete forms of 4.3 (two-digit years, zone
 * names, comments anywhere) and the ISO form some MTAs write in Received fields.
 * Returns undefined for anything not a real calendar time.
 */
export function parseMailDate(text: string): Date | undefined {
  const s = stripComments(text).replace(/\s+/g, ' ').trim();
  let m =
    /^(?:[A-Za-z]{3,9} ?, ?)?(\d{1,2}) ([A-Za-z]{3})[a-z]* (\d{2,4}) (\d{1,2}):(\d\d)(?::(\d\d))?(?: ([+-]\d{4}|[A-Za-z]{1,5}))?$/.exec(
      s,
    );
  let year: number,
    month: number,
    day: number,
    hh: number,
    mm: number,
    ss: number,
    zone: string | undefined;
  if (m) {
    day = Number(m[1]);
    month = MONTHS.indexOf((m[2] ?? '').toLowerCase());
    year = Number(m[3]);
    if ((m[3] ?? '').length === 2) year += year < 50 ? 2000 : 1900;
    else if ((m[3] ?? '').length === 3) year += 1900;
    hh = Number(m[4]);
    mm = Number(m[5]);
    ss = Number(m[6] ?? 0);
    zone = m[7];
  } else {
    m = /^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d)(?::(\d\d))?(?:\.\d+)? ?(Z|[+-]\d\d:?\d\d)?$/.exec(
      s,
    );
    if (!m) return undefined;
    year = Number(m[1]);
    month = Number(m[2]) - 1;
    day = Number(m[3]);
    hh = Number(m[4]);
    mm = Number(m[5]);
    ss = Number(m[6] ?? 0);
    zone = m[7]?.replace(':', '');
  }
  const offset = zoneMinutes(zone);
  if (month < 0 || offset === undefined || hh > 23 || mm > 59 || ss > 60) return undefined;
  const utc = Date.UTC(year, month, day, hh, mm, Math.min(ss, 59));
  const check = new Date(utc);
  if (check.getUTCDate() !== day || check.getUTCMonth() !== month) return undefined;
  return new Date(utc - offset * 60_000);
}

/** A date a server would accept as INTERNALDATE for mail that really arrived: not before 1970, not in the future. */
function plausible(d: Date | undefined, now: Date): d is Date {
  return d !== undefined && d.getTime() >= 0 && d.getTime() <= now.getTime() + 24 * 3600_000;
}

export function internalDateOf(
  message: Buffer,
  now: Date = new Date(),
): { date: Date; from: DateSource } {
  const fields = headerFields(headerSection(message));
  for (const f of fields) {
    if (f.name !== 'received') continue;
    const semi = f.value.lastIndexOf(';');
    if (semi < 0) continue;
    const d = parseMailDate(f.value.slice(semi + 1));
    if (plausible(d, now)) return { date: d, from: 'received' };
  }
  const dateField = fields.find((f) => f.name === 'date');
  const d = dateField ? parseMailDate(dateField.value) : undefined;
  if (plausible(d, now)) return { date: d, from: 'date' };
  return { date: now, from: 'now' };
}
