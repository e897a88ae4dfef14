/**
 * Special-use roles of mailboxes: RFC 6154 attributes first, and for servers that do
 * not report them, the names mail clients and servers commonly give these folders
 * (English, German, French, Spanish, Italian, Dutch; Outlook/Exchange and Apple Mail
 * spellings included).
 */
import type { SpecialUse } from '../types.js';

/** Roles that are mapped onto the destination's own folder. \All and \Flagged are usually virtual. */
export type MappedRole = '\\Sent' | '\\Drafts' | '\\Trash' | '\\Junk' | '\\Archive';

export const MAPPED_ROLES: readonly MappedRole[] = [
  '\\Sent',
  '\\Drafts',
  '\\Trash',
  '\\Junk',
  '\\Archive',
];

const ATTRIBUTE_ORDER: readonly SpecialUse[] = [
  '\\Sent',
  '\\Drafts',
  '\\Trash',
  '\\Junk',
  '\\Archive',
  '\\All',
  '\\Flagged',
];

// Written with \u escapes to keep the source ASCII (style.md).
export const LOCALIZED_NAMES: Readonly<Record<MappedRole, readonly string[]>> = {
  '\\Sent': [
    'Sent',
    'Sent Items',
    'Sent Messages',
    'Sent Mail',
    'Gesendet',
    'Gesendete Elemente',
    'Gesendete Objekte',
    'Envoy\u00e9s',
    '\u00c9l\u00e9ments envoy\u00e9s',
    'Enviados',
    'Elementos enviados',
    'Posta inviata',
    'Verzonden items',
    'Verzonden',
  ],
  '\\Drafts': ['Drafts', 'Entw\u00fcrfe', 'Brouillons', 'Borradores', 'Bozze', 'Concepten'],
  '\\Trash': [
    'Trash',
    'Deleted Items',
    'Deleted Messages',
    'Papierkorb',
    'Gel\u00f6schte Elemente',
    'Gel\u00f6schte Objekte',
    'Corbeille',
    '\u00c9l\u00e9ments supprim\u00e9s',
    'Papelera',
    'Elementos eliminados',
    'Cestino',
    'Posta eliminata',
    'Prullenbak',
    'Verwijderde items',
  ],
  '\\Junk': [
    'Junk',
    'Junk E-mail',
    'Junk Email',
    'Spam',
    'Junk-E-Mail',
    'Ind\u00e9sirables',
    'Courrier ind\u00e9sirable',
    'Correo no deseado',
    'Posta indesiderata',
    'Ongewenste e-mail',
  ],
  '\\Archive': ['Archive', 'Archives', 'Archiv', 'Archivio', 'Archivo', 'Archief'],
};

function fold(name: string): string {
  // NFC: servers on macOS file systems may hand out decomposed accents.
  return name.normalize('NFC').toLowerCase();
}

const BY_NAME = new Map<string, MappedRole>();
for (const role of MAPPED_ROLES) {
  for (const n of LOCALIZED_NAMES[role]) BY_NAME.set(fold(n), role);
}

/** The RFC 6154 role among LIST attributes, if any (case-insensitive, RFC 3501 atoms). */
export function specialUseFromFlags(flags: readonly string[]): SpecialUse | undefined {
  const lower = new Set(flags.map((f) => f.toLowerCase()));
  return ATTRIBUTE_ORDER.find((role) => lower.has(role.toLowerCase()));
}

/** The role a folder name usually means, e.g. "Gesendete Elemente" -> \Sent. */
export function specialUseFromName(name: string): MappedRole | undefined {
  return BY_NAME.get(fold(name.trim()));
}

/** Position of a name in its role's list (lower = more canonical), for tie-breaking. */
export function nameRank(role: MappedRole, name: string): number {
  const f = fold(name.trim());
  const i = LOCALIZED_NAMES[role].findIndex((n) => fold(n) === f);
  return i < 0 ? Number.MAX_SAFE_INTEGER : i;
}

export function isMappedRole(role: SpecialUse | undefined): role is MappedRole {
  return role !== undefined && (MAPPED_ROLES as readonly string[]).includes(role);
}
