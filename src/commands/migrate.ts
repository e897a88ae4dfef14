import { Args, Command, Flags } from '@oclif/core';
import { dirname, join } from 'node:path';
import { reportCommandError } from '../core/cli/errors.js';
import { readPasswordFromStdin } from '../core/cli/stdin.js';
import { accountLine, progressView, renderDryRun } from '../core/cli/render-migrate.js';
import { loadConfig } from '../core/config/index.js';
import type { Config } from '../core/config/types.js';
import { OperatorError } from '../core/errors.js';
import { makeProvisioner } from '../core/provision/index.js';
import { loadKeyring, openText } from '../core/state/crypto.js';
import { StateError } from '../core/state/errors.js';
import { openJsonStore } from '../core/state/json-store.js';
import type { StateStore } from '../core/state/types.js';
import { openLedger } from '../core/transfer/copy/ledger.js';
import { dryRun } from '../core/transfer/dry-run.js';
import { migrateAccount, type MigrateDeps } from '../core/transfer/migrate-account.js';
import { migrateMany, pendingAccounts } from '../core/transfer/migrate-many.js';

export default class Migrate extends Command {
  static override summary = 'Move one account (or every captured one) to the destination now.';

  static override description = [
    'Provisions the account on the destination with the same password, copies every folder with every message (byte for byte, with flags, keywords and received dates) and the subscriptions, verifies the result and records it in the state. Running it again is always safe: it resumes after an interruption and later copies only what changed (new mail, flag changes, expunges).',
    'The password comes from the state (captured by the gateway), or from standard input with --password-stdin. Every message ends in the ledger (ledger.jsonl beside the state) as copied, skipped or failed with the reason. Exit status 1 when anything was not copied.',
  ].join('\n\n');

  static override examples = [
    '<%= config.bin %> migrate alice@example.org',
    'printf \'%s\' "$PASSWORD" | <%= config.bin %> migrate alice@example.org --password-stdin',
    '<%= config.bin %> migrate alice@example.org --dry-run',
    '<%= config.bin %> migrate --all --concurrency 4 --json',
  ];

  static override args = {
    address: Args.string({
      description: 'the account to move (as the user logs in)',
      required: false,
    }),
  };

  static override flags = {
    config: Flags.string({
      char: 'c',
      description: 'config file (default: $AUTOPORT_CONFIG or /etc/autoport/autoport.yaml)',
    }),
    all: Flags.boolean({ description: 'move every captured account', default: false }),
    concurrency: Flags.integer({
      description: 'accounts moved at once with --all (default: transfer.concurrency)',
      min: 1,
    }),
    'password-stdin': Flags.boolean({
      description: 'read the password from standard input',
      default: false,
    }),
    'dry-run': Flags.boolean({
      description: 'show the plan (folders, counts, sizes, problems, ETA); change nothing',
      default: false,
    }),
    verify: Flags.string({
      description: 'hash again on the destination: what this run wrote, all, or none',
      options: ['written', 'all', 'none'],
      default: 'written',
    }),
    json: Flags.boolean({ description: 'print the result as JSON', default: false }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Migrate);
    try {
      if (!args.address === !flags.all)
        throw new OperatorError(
          'give one account address or --all',
          'autoport migrate alice@example.org, or autoport migrate --all',
          'EUSAGE',
        );
      if (flags.all && (flags['password-stdin'] || flags['dry-run'])) {
        throw new OperatorError(
          '--password-stdin and --dry-run work for one account only',
          'name the account: autoport migrate alice@example.org --dry-run',
          'EUSAGE',
        );
      }
      const config = loadConfig(flags.config);
      const stdinPassword = flags['password-stdin']
        ? await readPasswordFromStdin('migrate')
        : undefined;
      if (flags['dry-run']) {
        const address = args.address as string;
        const store = await openStore(config);
        try {
          const password = stdinPassword ?? storedPassword(store, config, address);
          const result = await dryRun({ address, password }, { config, store });
          this.log(flags.json ? JSON.stringify(result, null, 2) : renderDryRun(result).trimEnd());
        } finally {
          await store.close();
        }
        return;
      }
      await this.migrate(config, args.address, stdinPassword, flags);
    } catch (err) {
      reportCommandError(asOperatorError(err), flags.json);
    }
  }

  private async migrate(
    config: Config,
    address: string | undefined,
    stdinPassword: string | undefined,
    flags: { all: boolean; concurrency?: number; json: boolean; verify: string },
  ): Promise<void> {
    const store = await openStore(config);
    const ledger = await openLedger(join(dirname(config.state), 'ledger.jsonl'));
    const abort = new AbortController();
    const onSignal = (): void =>
      abort.abort(
        new OperatorError(
          'interrupted',
          'run the same command again: it resumes where it stopped',
          'EINTERRUPTED',
        ),
      );
    process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
    const view = flags.json
      ? null
      : progressView(
          (s) => void process.stdout.write(s),
          Boolean(process.stdout.isTTY),
          process.stdout.columns || 100,
        );
    const deps: MigrateDeps = {
      config,
      store,
      ledger,
      provisioner: makeProvisioner(config.destination.provision),
      onEvent: (e) => view?.onEvent(e),
      signal: abort.signal,
      verify: flags.verify as MigrateDeps['verify'],
    };
    try {
      if (flags.all) {
        const { accounts, unusable } = pendingAccounts(store, loadKeyring(config.keyFile));
        for (const u of unusable) process.stderr.write(`skipped ${u.address}: ${u.reason}\n`);
        const many = await migrateMany(
          accounts,
          flags.concurrency ?? config.transfer.concurrency,
          deps,
        );
        view?.stop();
        if (flags.json) this.log(JSON.stringify(many, null, 2));
        for (const f of many.failed) process.stderr.write(`error: ${f.address}: ${f.error}\n`);
        if (many.failed.length || many.results.some((r) => !r.ok) || unusable.length)
          process.exitCode = 1;
      } else {
        const addr = address as string;
        const password = stdinPassword ?? storedPassword(store, config, addr);
        const result = await migrateAccount({ address: addr, password }, deps);
        view?.stop();
        if (flags.json) this.log(JSON.stringify(result, null, 2));
        else if (!view) this.log(accountLine(result));
        if (!result.ok) process.exitCode = 1;
      }
    } finally {
      view?.stop();
      process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
      await ledger.close();
      await store.close();
    }
  }
}

async function openStore(config: Config): Promise<StateStore> {
  return openJsonStore(config.state);
}

function storedPassword(store: StateStore, config: Config, address: string): string {
  const rec = store.get(address);
  if (!rec?.credentials) {
    throw new OperatorError(
      `no captured password for ${address} in ${store.location}`,
      `let the user log in once through the gateway, or pass the password: printf '%s' "$PASSWORD" | autoport migrate ${address} --password-stdin`,
      'ENOCREDENTIALS',
    );
  }
  return openText(loadKeyring(config.keyFile), rec.credentials, rec.address);
}

/** State errors already say what to try; give them the shape commands report. */
function asOperatorError(err: unknown): unknown {
  if (err instanceof StateError)
    return new OperatorError(err.message, 'see the message above', err.code, { cause: err });
  const e = err as { name?: string; message?: string; config?: boolean };
  if (e?.name === 'ProvisionError')
    return new OperatorError(
      e.message ?? 'provisioning failed',
      'check destination.provision in the config',
      'EPROVISION',
      { cause: err },
    );
  return err;
}
