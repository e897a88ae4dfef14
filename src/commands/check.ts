import { Command, Flags } from '@oclif/core';
import { reportCommandError } from '../cli/errors.js';
import { firstFailure, renderCheck } from '../cli/render-check.js';
import { renderDryRun } from '../cli/render-migrate.js';
import { readPasswordFromStdin } from '../cli/stdin.js';
import { styleFor } from '../cli/style.js';
import { checkAccount, type AccountCheckResult } from '../core/check/check-account.js';
import { runCheck, type CheckResult } from '../core/check/index.js';
import { loadConfig } from '../core/config/index.js';
import { OperatorError } from '../core/errors.js';
import { configFlag } from '../cli/flags.js';

export default class Check extends Command {
  static override summary =
    'Pre-flight: connect to every configured server and report what the migration can rely on.';

  static override description = [
    'Connects to each endpoint in the config (source IMAP, POP3, SMTP, submission; destination IMAP and SMTP/LMTP) and reports how long the connect took, the TLS in use (protocol, cipher, certificate and whether it verifies), the greeting, and each capability that matters with what it means for the migration. It logs in nowhere, sends no mail and writes nothing.',
    'With --user and --password-stdin it also logs in as that user on the source (the capability table then shows what the server offers after login) and shows the account plan of `autoport migrate <address> --dry-run`: folders with their names on the destination, counts, sizes, problems and an estimated time. It still writes nothing.',
    'Refuses what would be unsafe later: a server without STARTTLS where tls=starttls is configured, bytes smuggled behind a STARTTLS reply, a PREAUTH greeting, a certificate that does not verify (unless the URL says verify=false). Exit status 1 when any endpoint fails (or, with --user, when there is no plan).',
    'A private CA: run with NODE_EXTRA_CA_CERTS=/path/to/ca.pem.',
  ].join('\n\n');

  static override examples = [
    '<%= config.bin %> check',
    '<%= config.bin %> check --config ./autoport.yaml --timeout 5000',
    "<%= config.bin %> check --json | jq '.endpoints[] | {role, ok}'",
    'printf \'%s\' "$PASSWORD" | <%= config.bin %> check --user alice@example.org --password-stdin',
  ];

  static override flags = {
    config: configFlag,
    json: Flags.boolean({ description: 'print the result object as JSON', default: false }),
    timeout: Flags.integer({
      description:
        'milliseconds to wait for connect, greeting and each reply (default: timeouts in the config)',
      min: 1,
    }),
    user: Flags.string({
      description: 'also log in as this account and show its migration plan (dry run)',
    }),
    'password-stdin': Flags.boolean({
      description: "read --user's password from standard input",
      default: false,
    }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Check);
    try {
      if (Boolean(flags.user) !== flags['password-stdin'])
        throw new OperatorError(
          '--user and --password-stdin go together',
          `printf '%s' "$PASSWORD" | autoport check --user ${flags.user ?? 'alice@example.org'} --password-stdin`,
          'EUSAGE',
        );
      const config = loadConfig(flags.config);
      const options = flags.timeout ? { timeoutMs: flags.timeout } : {};
      let result: CheckResult;
      let account: AccountCheckResult['account'] | undefined;
      if (flags.user) {
        const password = await readPasswordFromStdin('check');
        const r = await checkAccount(config, { address: flags.user, password }, options);
        result = r;
        account = r.account;
      } else result = await runCheck(config, options);
      if (flags.json) this.log(JSON.stringify(result, null, 2));
      else {
        process.stdout.write(
          renderCheck(result, process.stdout.columns || 100, styleFor(process.stdout)),
        );
        if (account?.plan) process.stdout.write(`\n${renderDryRun(account.plan)}`);
      }
      const failure = firstFailure(result);
      if (failure) {
        process.stderr.write(`error: ${failure.where}: ${failure.finding.message}\n`);
        if (failure.finding.hint) process.stderr.write(`  try: ${failure.finding.hint}\n`);
      }
      if (account?.error)
        process.stderr.write(
          `error: no plan for ${account.address}: ${account.error.message}\n  try: ${account.error.hint}\n`,
        );
      if (failure || account?.error) process.exitCode = 1;
    } catch (err) {
      reportCommandError(err, flags.json);
    }
  }
}
