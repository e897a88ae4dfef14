import { Command, Flags } from '@oclif/core';
import { reportCommandError } from '../core/cli/errors.js';
import { firstFailure, renderCheck } from '../core/cli/render-check.js';
import { runCheck } from '../core/check/index.js';
import { loadConfig } from '../core/config/index.js';

export default class Check extends Command {
  static override summary =
    'Pre-flight: connect to every configured server and report what the migration can rely on.';

  static override description = [
    'Connects to each endpoint in the config (source IMAP, POP3, SMTP, submission; destination IMAP and SMTP/LMTP) and reports how long the connect took, the TLS in use (protocol, cipher, certificate and whether it verifies), the greeting, and each capability that matters with what it means for the migration. It logs in nowhere, sends no mail and writes nothing.',
    'Refuses what would be unsafe later: a server without STARTTLS where tls=starttls is configured, bytes smuggled behind a STARTTLS reply, a PREAUTH greeting, a certificate that does not verify (unless the URL says verify=false). Exit status 1 when any endpoint fails.',
    'A private CA: run with NODE_EXTRA_CA_CERTS=/path/to/ca.pem.',
  ].join('\n\n');

  static override examples = [
    '<%= config.bin %> check',
    '<%= config.bin %> check --config ./autoport.yaml --timeout 5000',
    "<%= config.bin %> check --json | jq '.endpoints[] | {role, ok}'",
  ];

  static override flags = {
    config: Flags.string({
      char: 'c',
      description: 'config file (default: $AUTOPORT_CONFIG or /etc/autoport/autoport.yaml)',
    }),
    json: Flags.boolean({ description: 'print the result object as JSON', default: false }),
    timeout: Flags.integer({
      description:
        'milliseconds to wait for connect, greeting and each reply (default: timeouts in the config)',
      min: 1,
    }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Check);
    try {
      const config = loadConfig(flags.config);
      const result = await runCheck(config, flags.timeout ? { timeoutMs: flags.timeout } : {});
      if (flags.json) this.log(JSON.stringify(result, null, 2));
      else process.stdout.write(renderCheck(result, process.stdout.columns || 100));
      const failure = firstFailure(result);
      if (failure) {
        process.stderr.write(`error: ${failure.where}: ${failure.finding.message}\n`);
        if (failure.finding.hint) process.stderr.write(`  try: ${failure.finding.hint}\n`);
        process.exitCode = 1;
      }
    } catch (err) {
      reportCommandError(err, flags.json);
    }
  }
}
