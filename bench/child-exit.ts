/** A gateway a benchmark spawned: how it ended, and a stop that ends it for sure. */
import type { ChildProcess } from 'node:child_process';
import { onProcessExit } from '../test/support/tmp.js';

export interface ChildEnd {
  /** undefined while it runs; its exit code or signal once it ended */
  exit(): string | undefined;
  /** SIGTERM, then SIGKILL after `killAfterMs`; resolves with how it ended */
  stop(killAfterMs: number): Promise<string>;
}

/** However this process ends (Ctrl-C, a crash), the child does not outlive it. */
export function watchChild(child: ChildProcess): ChildEnd {
  let exit: string | undefined;
  const unregister = onProcessExit(() => child.kill('SIGKILL'));
  const exited = new Promise<void>((resolve) =>
    child.once('exit', (code, sig) => {
      exit = sig ? `signal ${sig}` : `exit code ${code}`;
      unregister();
      resolve();
    }),
  );
  return {
    exit: () => exit,
    stop: async (killAfterMs) => {
      if (exit === undefined) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
        await exited;
        clearTimeout(t);
      }
      return exit as string;
    },
  };
}
