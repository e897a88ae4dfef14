/**
 * Errors of the state layer. Each carries a stable `code` for programs and a message an
 * operator can act on (what is wrong, with which file, and what to try). Key material and
 * plaintext secrets never appear in a message.
 */
export class StateError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Another live process holds the store's single-writer lock. */
export class StoreLockedError extends StateError {
  constructor(
    readonly storePath: string,
    readonly lockPath: string,
    readonly pid: number,
    readonly hostname: string,
    otherHost: boolean,
  ) {
    super(
      'ESTORELOCKED',
      otherHost
        ? `another autoport process (pid ${pid} on host ${hostname}) owns ${storePath}; ` +
            `stop it, or use its control socket. If nothing runs there any more, delete ${lockPath}`
        : `another autoport process (pid ${pid}) owns ${storePath}; stop it, or use its control socket`,
    );
  }
}

/** The state file exists but is not a document this version can read. */
export class StoreCorruptError extends StateError {
  constructor(
    readonly path: string,
    readonly backupPath: string,
    detail: string,
    options?: { cause?: unknown; backupExists?: boolean },
  ) {
    super(
      'ESTORECORRUPT',
      `state file ${path} is unreadable (${detail}). Nothing was changed. ` +
        (options?.backupExists
          ? `To recover, stop autoport and restore the previous good version: ` +
            `cp ${backupPath} ${path}`
          : `There is no backup (${backupPath}); fix the file by hand, ` +
            `or move it away to start with an empty store`),
      options,
    );
  }
}

/**
 * The state could not be saved (disk full, read-only, I/O error). The change stays in
 * memory and the store keeps retrying; what waited for it to be on disk must not report
 * success.
 */
export class StoreUnavailableError extends StateError {
  constructor(
    readonly path: string,
    cause: Error,
  ) {
    super(
      'ESTOREUNAVAILABLE',
      `cannot save the state to ${path}: ${cause.message}. ${unavailableHint(path, cause)}`,
      { cause },
    );
  }
}

/** What to try: a file on a disk (saves are retried), or a database (the change failed). */
function unavailableHint(path: string, cause: Error): string {
  const code = (cause as NodeJS.ErrnoException).code;
  if (/^postgres(ql)?:/.test(path))
    return code === '53100'
      ? 'Free space on the database server; this change was not made'
      : 'Check that PostgreSQL is up and reachable from here (pg_isready); this change was not made';
  return (
    (code === 'ENOSPC' || code === 'EDQUOT'
      ? 'Free space on its file system; '
      : code === 'EROFS' || code === 'EACCES' || code === 'EPERM'
        ? 'Make its folder writable again; '
        : 'Check the disk; ') + 'saving is retried every second'
  );
}

export class StoreClosedError extends StateError {
  constructor(path: string) {
    super('ESTORECLOSED', `state store ${path} is closed`);
  }
}

export class StoreReadOnlyError extends StateError {
  constructor(path: string) {
    super(
      'ESTOREREADONLY',
      `state store ${path} is open read-only; ` +
        (/^postgres(ql)?:/.test(path)
          ? 'a change needs a writing open: run a command that changes accounts'
          : 'changes must go through the process that owns it (its control socket), or stop ' +
            'that process first'),
    );
  }
}

export class InvalidAddressError extends StateError {
  constructor(detail: string) {
    super('EBADADDRESS', `invalid account address: ${detail}`);
  }
}

/** Key file missing, malformed, too open, or already present. */
export class KeyFileError extends StateError {
  constructor(
    code: 'EKEYMISSING' | 'EKEYPERM' | 'EKEYFORMAT' | 'EKEYEXISTS',
    readonly path: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}

/** A sealed secret cannot be opened: unknown key id, tampered, wrong key or wrong account. */
export class SecretOpenError extends StateError {
  constructor(code: 'EKEYUNKNOWN' | 'ESEALAUTH' | 'ESEALFORMAT', message: string) {
    super(code, message);
  }
}

/** A journal line that is neither good nor the torn last line of its file. */
export class JournalCorruptError extends StateError {
  constructor(
    readonly path: string,
    readonly storePath: string,
    detail: string,
    /** bytes of good lines before the damage */
    readonly validBytes: number,
    options?: { cause?: unknown },
  ) {
    super(
      'ESTORECORRUPT',
      `journal ${path} of ${storePath} is damaged (${detail}). Nothing was changed. ` +
        `The ${validBytes} bytes before the damage are intact: to keep them and drop the rest, ` +
        `stop autoport and run: truncate -s ${validBytes} ${path}`,
      options,
    );
  }
}

/** The snapshot names a journal generation that is not there. */
export class JournalMissingError extends StateError {
  constructor(
    readonly path: string,
    readonly storePath: string,
  ) {
    super(
      'ESTOREMISSING',
      `journal ${path} of ${storePath} is missing, so the changes since the last compaction ` +
        `are not there. Restore it from a backup of the folder; to start from the snapshot ` +
        `alone, accepting that loss, create it empty: touch ${path}`,
    );
  }
}
