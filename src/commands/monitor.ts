import { Command, Flags } from '@oclif/core';
import { reportCommandError } from '../cli/errors.js';
import { loadConfig } from '../core/config/index.js';
import { controlSocketPath } from '../core/control/proxy-or-store.js';
import { configFlag } from '../cli/flags.js';

export default class Monitor extends Command {
  static override summary = 'Watch the running gateway: sessions, transfers, errors, traffic.';

  static override description = [
    'Attaches to `autoport proxy` through its control socket (control.socket in the config) and shows, redrawn in place: the gateway (version, pid, uptime), accounts by state, the transfer queue, SMTP to source and destination and logins per minute with their trend, and one of three views: open sessions, running transfers with their progress, recent errors. Sessions that end are printed once above the live region, so the scrollback is a session log.',
    'Keys: 1 2 3 or Tab switch views; / filters by account or client (Enter keeps the filter, Esc clears it); up/down or j/k select a row; r or Enter moves the selected account now (retries a failed one, puts a captured one first in line); q or Ctrl-C quits. The monitor only reads and asks; quitting it does not affect the gateway.',
    'With several gateway nodes on one PostgreSQL state, the sessions and transfers of every live node are shown, each with its node (a NODE column, and a line of the nodes with their load), as each node published them with its last heartbeat; ended sessions, the per-minute counts and the errors are those of the node attached to.',
    'When the gateway is not running or goes away, the monitor says so, keeps the last numbers (marked stale) and reconnects by itself.',
    'When standard input or output is not a terminal (a pipe, cron, a log), or with --once, it prints one snapshot as text (--json: as JSON) and exits; exit 1 when the gateway is not running.',
  ].join('\n\n');

  static override examples = [
    '<%= config.bin %> monitor',
    '<%= config.bin %> monitor --config ./autoport.yaml --interval 2000',
    '<%= config.bin %> monitor --once > snapshot.txt',
    "<%= config.bin %> monitor --json | jq '.transfers'",
  ];

  static override flags = {
    config: configFlag,
    interval: Flags.integer({
      description: 'milliseconds between snapshots',
      min: 250,
      default: 1000,
    }),
    once: Flags.boolean({ description: 'print one snapshot as text and exit', default: false }),
    json: Flags.boolean({ description: 'print one snapshot as JSON and exit', default: false }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Monitor);
    try {
      const config = loadConfig(flags.config);
      const socketPath = controlSocketPath(config);
      const live = !flags.once && !flags.json && process.stdout.isTTY && process.stdin.isTTY;
      if (live) {
        // Ink draws only <Static> output, never the live region, when it thinks it runs
        // in CI (the is-in-ci package reads CI / CONTINUOUS_INTEGRATION when Ink is
        // loaded). On a terminal the live screen is what was asked for, so Ink is loaded
        // here, after clearing them for this process.
        delete process.env.CI;
        delete process.env.CONTINUOUS_INTEGRATION;
        const { runMonitor } = await import('../tui/run.js');
        await runMonitor({ socketPath, intervalMs: flags.interval });
      } else {
        const { printMonitorSnapshot } = await import('../tui/run.js');
        await printMonitorSnapshot(
          { socketPath, json: flags.json, columns: process.stdout.columns || 120 },
          (text) => void process.stdout.write(text),
        );
      }
    } catch (err) {
      reportCommandError(err, flags.json);
    }
  }
}
