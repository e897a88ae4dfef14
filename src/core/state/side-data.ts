/**
 * Small per-account data kept beside the record, by key, that every gateway node must see:
 * the "handed over" marker (transfer/handover.ts) and the POP3 UIDL map a moved account's
 * POP3 logins are served with (transfer/uidl/store.ts). The JSON store keeps them as side
 * files under its folder (side-files.ts); the PostgreSQL store in a table, so a node that
 * did not move an account still serves it the same UIDLs.
 *
 * The copy engine's checkpoints (UID maps) stay files on the node that copies: a move taken
 * over by another node matches what already reached the destination instead.
 */
import { stat } from 'node:fs/promises';
import { StoreReadOnlyError } from './errors.js';
import { readSideFile, removeSideFiles, sideFilePath, writeSideFile } from './side-files.js';
import type { SideData } from './types.js';

type HasLocation = { readonly location: string; readonly sideDir?: string | undefined };

/** Side data as side files (the JSON store's, and any store's on one node). */
export class FileSideData implements SideData {
  /** `readOnly` is asked at each change: a read-only store refuses them as its records' */
  constructor(
    private readonly store: HasLocation,
    private readonly readOnly: () => boolean = () => false,
  ) {}

  read<T>(address: string, key: string): Promise<T | undefined> {
    return readSideFile<T>(this.path(address, key));
  }

  write(address: string, key: string, data: unknown): Promise<void> {
    if (this.readOnly()) return Promise.reject(new StoreReadOnlyError(this.store.location));
    return writeSideFile(this.path(address, key), data);
  }

  version(address: string, key: string): Promise<number | undefined> {
    return stat(this.path(address, key)).then(
      (s) => s.mtimeMs,
      () => undefined,
    );
  }

  remove(address: string): Promise<void> {
    if (this.readOnly()) return Promise.reject(new StoreReadOnlyError(this.store.location));
    return removeSideFiles(this.store, address);
  }

  private path(address: string, key: string): string {
    return sideFilePath(this.store, address, key).absolute;
  }
}
