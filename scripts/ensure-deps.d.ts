// Types for scripts/ensure-deps.js, so TypeScript (the test harness) can reuse its table.
/** binary path -> Debian package that provides it */
export declare const OS_PACKAGES: Readonly<Record<string, string>>;
/** Debian packages whose binaries are missing on this machine (deduplicated) */
export declare function missingOsPackages(): string[];
