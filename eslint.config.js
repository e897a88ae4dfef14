import js from '@eslint/js';
import tseslint from 'typescript-eslint';

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
    files: ['src/core/**'],
    rules: {
      // core returns data: the terminal (oclif, Ink, colours) belongs to src/cli, src/commands
      // and src/tui, which import core and never the other way round.
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/commands/**', '**/tui/**', '**/cli/**'],
              message: 'core never imports the CLI or the TUI',
            },
            {
              group: ['@oclif/*', 'chalk', 'ink', 'ink-*', 'react', 'react/*'],
              message: 'core returns data; rendering belongs to src/cli or src/tui',
            },
          ],
        },
      ],
    },
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
            { group: ['**/commands/**', '**/tui/**'] },
            { group: ['**/gateway/**'], message: 'gateway/ only wires; import the part itself' },
          ],
        },
      ],
    },
  },
);
