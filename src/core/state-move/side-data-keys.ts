/**
 * The keys of side data (state/side-data.ts) an export carries for each account. The store
 * cannot list its side data, so the dump asks for each known key; a new kind of side data
 * is added here too.
 */
import { MARKER_KEY } from '../transfer/handover.js';
import { KEY as UIDL_KEY } from '../transfer/uidl/store.js';

export const SIDE_DATA_KEYS: readonly string[] = [MARKER_KEY, UIDL_KEY];
