// Types for scripts/ensure-deps.js, so TypeScript (the test harness) can reuse its table.
/** binary path -> Debian package that provides it */
export declare const OS_PACKAGES: Readonly<Record<string, string>>;
/** Perl module -> Debian package that provides it */
export declare const PERL_MODULES: Readonly<Record<string, string>>;
/** Debian packages that are missing on this machine (deduplicated) */
export declare function missingOsPackages(): string[];
/** install the missing packages as root on Debian/Ubuntu, or throw saying what to run */
export declare function installOsPackages(): string[];
