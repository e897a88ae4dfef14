/**
 * A gateway in front of the migration lab (test/support: a real source and destination
 * Dovecot), with its logs captured in memory and in sessions.jsonl so tests can search
 * them, plus small raw-socket helpers for wire transcripts.
 */
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { join } from 'node:path';
import { ImapFlow } from 'imapflow';
import { EventBus, type GatewayEvent } from '../../src/core/bus.js';
import { loadConfig } from '../../src/core/config/index.js';
import type { Config } from '../../src/core/config/types.js';
import {
  startGateway,
  type Gateway,
  type GatewayDeps,
  type MigrateFn,
} from '../../src/core/gateway/gateway.js';
import { makeMigrateFn } from '../../src/core/gateway/migrate.js';
import type { FolderOps } from '../../src/core/transfer/migrate-deps.js';
import type { SweepFn } from '../../src/core/workers/late-mail.js';
import { attachSessionLog, createLogger, memorySink } from '../../src/core/log/index.js';
import { openEventLog } from '../../src/core/state/event-log.js';
import { generateKeyFile, loadKeyring, type Keyring } from '../../src/core/state/crypto.js';
import { openStateStore } from '../../src/core/state/open-store.js';
import type { EventLog, StateStore } from '../../src/core/state/types.js';
import { startLab, testTls, writeLabConfig, type Lab, type LabOptions } from '../support/index.js';

export interface ProxyLab {
  lab: Lab;
  config: Config;
  store: StateStore;
  keyring: Keyring;
  gateway: Gateway;
  bus: EventBus;
  /** every log line the gateway wrote */
  logText(): string;
  sessionLog: EventLog;
  imapPort: number;
  pop3Port: number;
  /** a second gateway over the same store/lab (other options); stopped with the lab */
  another(over: Partial<GatewayDeps>, config?: Config): Promise<Gateway>;
  stop(): Promise<void>;
}

export interface ProxyLabOptions {
  lab?: LabOptions;
  /** YAML overrides for writeLabConfig (a function gets the lab, e.g. for its ports) */
  config?: Record<string, unknown> | ((lab: Lab) => Record<string, unknown>);
  /** give the gateway the test certificate (STARTTLS, IMAPS/POP3S) */
  tls?: boolean;
  deps?: Partial<GatewayDeps>;
  /** run the worker pool with the real copy engine (optionally wrapped, e.g. to hold it) */
  workers?: boolean | ((real: MigrateFn) => MigrateFn);
  /** the copy engine's folder operations, e.g. wrapped to hold a pass until the test is ready */
  folders?: FolderOps;
}

/** Brakes short enough for tests, still on the real code path. */
export const FAST_BRAKES = { brakes: { failureDelayMs: 50 } };

export async function startProxyLab(opts: ProxyLabOptions = {}): Promise<ProxyLab> {
  const lab = await startLab({
    ...opts.lab,
    sourceQuirks: { authFailureDelay: '0 secs', ...opts.lab?.sourceQuirks },
  });
  const extra: Record<string, unknown> = {
    listen: {
      imap: '127.0.0.1:0',
      pop3: '127.0.0.1:0',
      ...(opts.tls ? { imaps: '127.0.0.1:0', pop3s: '127.0.0.1:0' } : {}),
    },
    logDir: join(lab.dir, 'log'),
    timeouts: { connectMs: 3000, greetingMs: 3000, commandMs: 10_000, idleMs: 60_000 },
    ...(typeof opts.config === 'function' ? opts.config(lab) : opts.config),
  };
  if (opts.tls) {
    const t = await testTls();
    extra.tls = { cert: t.certFile, key: t.keyFile };
  }
  const file = writeLabConfig(lab, lab.dir, extra);
  const config = loadConfig(file);
  await generateKeyFile(config.keyFile);
  const keyring = loadKeyring(config.keyFile);
  // the backend the config names (a JSON file, or a postgresql:// URL)
  const store = await openStateStore(config, { saveDelayMs: 10 });
  const sink = memorySink();
  const logger = createLogger({ sink, format: 'json', level: 'debug' });
  const bus = new EventBus();
  const sessionLog = await openEventLog(join(config.logDir, 'sessions.jsonl'), { flushDelayMs: 5 });
  attachSessionLog(bus, { logger, file: sessionLog });
  const gateways: Gateway[] = [];
  let migrate: MigrateFn | undefined;
  let sweep: SweepFn | undefined;
  let closeMigrate = async (): Promise<void> => undefined;
  if (opts.workers) {
    const m = await makeMigrateFn(() => config, store, logger, opts.folders);
    migrate = typeof opts.workers === 'function' ? opts.workers(m.migrate) : m.migrate;
    sweep = m.sweep;
    closeMigrate = m.close;
  }
  const make = async (over: Partial<GatewayDeps>, cfg = config): Promise<Gateway> => {
    const g = await startGateway(cfg, {
      store,
      keyring,
      bus,
      logger,
      limits: FAST_BRAKES,
      migrate,
      sweep,
      smtp: false,
      ...opts.deps,
      ...over,
    });
    gateways.push(g);
    return g;
  };
  const gateway = await make({});
  return {
    lab,
    config,
    store,
    keyring,
    gateway,
    bus,
    logText: () => sink.text(),
    sessionLog,
    imapPort: gateway.listeners.imap!.port,
    pop3Port: gateway.listeners.pop3!.port,
    // a second gateway never runs a second worker pool over the same store
    another: (over, cfg) => make({ migrate: undefined, sweep: undefined, ...over }, cfg),
    stop: async () => {
      await Promise.all(gateways.map((g) => g.stop(0)));
      await closeMigrate();
      await sessionLog.close();
      await store.close();
      await lab.stop();
    },
  };
}

export function gatewayImap(
  port: number,
  user: string,
  password: string,
  extra: Partial<ConstructorParameters<typeof ImapFlow>[0]> = {},
): ImapFlow {
  const c = new ImapFlow({
    host: '127.0.0.1',
    port,
    secure: false,
    // imapflow upgrades whenever STARTTLS is offered; tests ask for it explicitly
    doSTARTTLS: false,
    auth: { user, pass: password },
    logger: false,
    disableAutoIdle: true,
    ...extra,
  });
  c.on('error', () => undefined);
  return c;
}

/** Read everything a file holds (for canary searches), '' when missing. */
export function readIfExists(path: string): string {
  try {
    return readFileSync(path, 'latin1');
  } catch {
    return '';
  }
}

/**
 * A raw client for transcripts: send lines, wait for a pattern. Everything received is
 * kept in `text`.
 */
export class RawClient {
  text = '';
  closed = false;
  private waiters: Array<() => void> = [];

  constructor(public socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      this.text += d;
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  static open(port: number, tls?: { ca: string }): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = tls
        ? tlsConnect({ port, host: '127.0.0.1', ca: tls.ca, servername: 'localhost' }, () =>
            resolve(new RawClient(s)),
          )
        : connect({ port, host: '127.0.0.1' }, () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  send(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Wait until the transcript matches (from offset `from`), or the connection closed. */
  async waitFor(re: RegExp, timeoutMs = 5000, from = 0): Promise<RegExpExecArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = re.exec(this.text.slice(from));
      if (m) return m;
      if (this.closed)
        throw new Error(`connection closed before ${re}; transcript:\n${this.text.slice(-2000)}`);
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`timeout waiting for ${re}; transcript:\n${this.text.slice(-2000)}`);
      await this.nextData(left);
    }
  }

  /** Resolves at the next data or close, or after `ms`. */
  protected nextData(ms: number): Promise<void> {
    return new Promise<void>((r) => {
      const t = setTimeout(r, ms);
      this.waiters.push(() => {
        clearTimeout(t);
        r();
      });
    });
  }

  async waitClosed(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline)
        throw new Error(`connection still open; transcript:\n${this.text.slice(-2000)}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 50);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

/**
 * The next event of a type on the lab's bus that matches, or a rejection after timeoutMs
 * or once `signal` aborts (so a test that failed early leaves no timer behind).
 */
export function nextEvent<T extends GatewayEvent['type']>(
  p: ProxyLab,
  type: T,
  match: (e: Extract<GatewayEvent, { type: T }>) => boolean,
  timeoutMs = 60_000,
  signal?: AbortSignal,
): Promise<Extract<GatewayEvent, { type: T }>> {
  return new Promise((resolve, reject) => {
    const end = (): void => {
      clearTimeout(t);
      off();
      signal?.removeEventListener('abort', stopped);
    };
    const stopped = (): void => {
      end();
      reject(new Error(`stopped waiting for ${type}`));
    };
    const t = setTimeout(() => {
      end();
      reject(new Error(`no ${type} within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = p.bus.on(type, (e) => {
      if (!match(e)) return;
      end();
      resolve(e);
    });
    if (signal?.aborted) stopped();
    else signal?.addEventListener('abort', stopped, { once: true });
  });
}
