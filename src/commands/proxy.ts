import { Command, Flags } from '@oclif/core';
import { reportCommandError } from '../cli/errors.js';
import { runProxyService } from '../core/gateway/service.js';
import { configFlag } from '../cli/flags.js';

export default class Proxy extends Command {
  static override summary = 'Run the gateway (IMAP, POP3 and SMTP) in the foreground.';

  static override description = [
    'Answers IMAP, POP3, SMTP and submission on the listen addresses of the config. A first login is checked against the source; when it works the credentials are kept encrypted, the account is captured and the session is spliced to the source (strategy proxy) or moved at once (strategy immediate). Captured accounts are moved to the destination by a worker pool (transfer.concurrency at a time), preferably once their user has logged out; migrated accounts go to the destination, accounts being moved get a "try again in a few minutes". Mail on port 25 is routed by account state, and every message relayed to the source is logged.',
    'While it runs it owns the state: `autoport accounts ...` changes and `autoport monitor` reach it over the control socket (control.socket, mode 0600: run them as the same user), and Prometheus metrics and /healthz are served on control.metrics (default 127.0.0.1:9465).',
    'Logs go to standard output: readable lines on a terminal, one JSON object per line otherwise (systemd, pipes), or logfmt (key=value) with --log-format logfmt. Under systemd each line carries its syslog priority, so `journalctl -u autoport -p warning` shows warnings and errors. Each failed login is one warn line "login failed protocol=... client=... user=... reason=..." for fail2ban (deploy/fail2ban). Passwords never reach a log.',
    'Signals: SIGTERM or Ctrl-C stops accepting, lets open sessions end within the grace period and saves the state (a second one ends them at once); SIGHUP reloads the config and the certificate without dropping sessions.',
  ].join('\n\n');

  static override examples = [
    '<%= config.bin %> proxy',
    '<%= config.bin %> proxy --config ./autoport.yaml --log-format json',
    'systemctl reload autoport   # SIGHUP: new certificate or config',
  ];

  static override flags = {
    config: configFlag,
    'log-format': Flags.string({
      description:
        'human lines, JSON or logfmt (default: human on a terminal, JSON otherwise, the journal included)',
      options: ['auto', 'human', 'json', 'logfmt'],
      default: 'auto',
    }),
    'log-level': Flags.string({ options: ['debug', 'info', 'warn', 'error'], default: 'info' }),
    grace: Flags.integer({
      description: 'seconds open sessions get to finish on SIGTERM',
      min: 0,
      default: 30,
    }),
    'no-workers': Flags.boolean({
      description: 'capture and route only; move accounts with `autoport migrate` instead',
      default: false,
    }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Proxy);
    try {
      await runProxyService({
        configPath: flags.config,
        log: {
          format: flags['log-format'] as 'auto' | 'human' | 'json' | 'logfmt',
          level: flags['log-level'] as 'debug' | 'info' | 'warn' | 'error',
        },
        graceMs: flags.grace * 1000,
        workers: !flags['no-workers'],
      });
    } catch (err) {
      reportCommandError(err, false);
    }
  }
}
