import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// core returns data: the terminal (oclif, Ink, colours) belongs to src/cli, src/commands and
// src/tui, which import core and never the other way round (docs/code-map.md). A later
// block's no-restricted-imports replaces an earlier one's, so every src/core block repeats
// these.
const CORE_LAYER = [
  {
    group: ['**/commands/**', '**/tui/**', '**/cli/**'],
    message: 'core never imports the CLI or the TUI',
  },
  {
    group: ['@oclif/*', 'chalk', 'ink', 'ink-*', 'react', 'react/*'],
    message: 'core returns data; rendering belongs to src/cli or src/tui',
  },
];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      // core must never depend on commands or the TUI (style.md, "Layout").
      'no-restricted-imports': 'off',
    },
  },
  {
    // plain Node scripts that run before node_modules exists
    files: ['scripts/**/*.js', 'bin/**/*.js'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
  {
    files: ['src/core/gateway/**'],
    rules: { 'no-restricted-imports': ['error', { patterns: CORE_LAYER }] },
  },
  {
    // gateway/ is the composition root: it imports the rest of core, nothing imports it
    // (docs/code-map.md).
    files: ['src/core/**'],
    ignores: ['src/core/gateway/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            ...CORE_LAYER,
            { group: ['**/gateway/**'], message: 'gateway/ only wires; import the part itself' },
          ],
        },
      ],
    },
  },
);
