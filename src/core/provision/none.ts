import type { Provisioner } from './types.js';

/** The accounts already exist on the destination (created by the administrator or a directory). */
export function makeNoneProvisioner(): Provisioner {
  return {
    kind: 'none',
    async provision(): Promise<void> {
      // nothing to create
    },
  };
}
