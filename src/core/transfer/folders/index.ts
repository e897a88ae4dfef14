/**
 * Folders of the copy engine: list both servers, plan the mapping (pure), create the
 * plan on the destination.
 */
export { planFolders, type PlanSide, type PlanOptions } from './plan.js';
export { listSide, namespaceOf, toListedMailbox, type ListedSide } from './list.js';
export { createFolders, type CreateFoldersResult } from './create.js';
export { encodeMUtf7, decodeMUtf7, isValidMUtf7, MUtf7Error } from './mutf7.js';
export {
  specialUseFromFlags,
  specialUseFromName,
  LOCALIZED_NAMES,
  MAPPED_ROLES,
  type MappedRole,
} from './special-use.js';
export { parseName, renderName, DELIMITER_LOOKALIKES } from './names.js';
