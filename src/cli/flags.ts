/**
 * Flags every command that reads the config shares, defined once so their names, short
 * forms and help text stay the same across commands.
 */
import { Flags } from '@oclif/core';

export const configFlag = Flags.string({
  char: 'c',
  description: 'config file (default: $AUTOPORT_CONFIG or /etc/autoport/autoport.yaml)',
});

export const jsonFlag = Flags.boolean({ description: 'print the result as JSON', default: false });
