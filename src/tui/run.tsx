/**
 * What `autoport monitor` runs: the live screen over the control socket until the user
 * quits, or one snapshot as text (or JSON) for a pipe. The command stays a thin parser.
 */
import { render } from 'ink';
import { connectControl } from '../core/control/client.js';
import { App } from './app.js';
import { createControlLink } from './control-link.js';
import { renderSnapshotText } from './report.js';

export interface MonitorOptions {
  socketPath: string;
  /** milliseconds between snapshots (the gateway may clamp it) */
  intervalMs: number;
}

/** the live screen; resolves once the user has quit (q or Ctrl-C) */
export async function runMonitor(opts: MonitorOptions): Promise<void> {
  const link = createControlLink({
    socketPath: opts.socketPath,
    intervalMs: opts.intervalMs,
    connect: connectControl,
  });
  // Ctrl-C goes through the App's own quit path (exitOnCtrlC off) so it ends like `q`
  const ink = render(<App link={link} />, { exitOnCtrlC: false, maxFps: 10 });
  try {
    await ink.waitUntilExit();
  } finally {
    link.close();
  }
}

/**
 * One snapshot, printed: the summary and every table as text, or the snapshot as JSON.
 * A gateway that is not running is an OperatorError (exit 1) saying so.
 */
export async function printMonitorSnapshot(
  opts: Pick<MonitorOptions, 'socketPath'> & { json: boolean; columns: number },
  write: (text: string) => void,
): Promise<void> {
  const client = await connectControl(opts.socketPath);
  try {
    const snapshot = await client.call('snapshot', {});
    write(
      opts.json
        ? `${JSON.stringify(snapshot, null, 2)}\n`
        : renderSnapshotText(snapshot, opts.columns),
    );
  } finally {
    client.close();
  }
}
