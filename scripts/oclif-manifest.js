#!/usr/bin/env node
// Writes oclif.manifest.json after the build, what `oclif manifest` does. Without it oclif
// imports every command module (and all they import: the copy engine, the TUI, zod, yaml)
// on every start, `autoport --version` included, to learn the commands' flags; with it, it
// imports only the command that runs. Run by `npm run build`: a manifest older than dist/
// would give stale flags, so it is made from dist/ each time and not committed.
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Plugin } from '@oclif/core';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const plugin = new Plugin({ root, type: 'core', ignoreManifest: true, errorOnManifestCreate: true });
await plugin.load();
writeFileSync(join(root, 'oclif.manifest.json'), `${JSON.stringify(plugin.manifest, null, 2)}\n`);
