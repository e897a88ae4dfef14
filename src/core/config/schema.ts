/**
 * The shape of autoport.yaml as zod schemas. Every object is strict (a typo is an error,
 * not a silently ignored key) and every message is written to follow
 * `<key path>: <value> -` in a ConfigError line, so it reads as a sentence.
 * Paths stay as written here; load.ts resolves them against the file's folder and reads
 * secrets.
 */
import { z } from 'zod';
import { EndpointError, parseEndpoint, type Endpoint, type Protocol } from './endpoint.js';
import { parseCidr } from '../net-address.js';
import type { ListenAddress } from './types.js';

function endpoint(expect: Protocol[], what: string) {
  return z
    .string({ invalid_type_error: `must be a URL string (${what})` })
    .transform((value, ctx): Endpoint => {
      try {
        return parseEndpoint(value, expect);
      } catch (err) {
        if (!(err instanceof EndpointError)) throw err;
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          message: err.problem,
          params: { shown: err.value },
        });
        return z.NEVER;
      }
    });
}

/** "host:port" or "[v6]:port"; port 0 means "any free port" (tests, socket activation). */
export function parseListenAddress(value: string): ListenAddress | string {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d+)$/.exec(value);
  if (!m) return 'not host:port; write it like 0.0.0.0:143 or [::]:143';
  const host = m[1] ?? m[2] ?? '';
  if (host === '') return 'has no host; use 0.0.0.0 for every IPv4 address or [::] for IPv6';
  const port = Number(m[3]);
  if (port > 65535) return 'port out of range (0-65535)';
  return { host, port };
}

const listenAddress = z
  .string({ invalid_type_error: 'must be a "host:port" string, e.g. "0.0.0.0:143"' })
  .transform((value, ctx): ListenAddress => {
    const parsed = parseListenAddress(value);
    if (typeof parsed === 'string') {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: parsed });
      return z.NEVER;
    }
    return parsed;
  });

const path = (what: string) =>
  z
    .string({ invalid_type_error: `must be a file path (${what})` })
    .min(1, `is empty; give ${what}`);

const envName = z
  .string({ invalid_type_error: 'must be the name of an environment variable' })
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'is not an environment variable name (letters, digits, _)');

const positiveInt = (what: string, max: number) =>
  z
    .number({ invalid_type_error: `must be a number (${what})` })
    .int('must be a whole number')
    .min(1, `must be at least 1 (${what})`)
    .max(max, `must be at most ${max} (${what})`);

/** RFC 1035 labels, lower-case so routing can compare without case folding. */
const DOMAIN =
  /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;

const domain = z
  .string({ invalid_type_error: 'must be a domain name' })
  .superRefine((value, ctx) => {
    if (value !== value.toLowerCase()) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        message: `must be lower-case (write ${value.toLowerCase()})`,
      });
    } else if (!DOMAIN.test(value)) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        message: 'is not a domain name like example.org',
      });
    }
  });

const stringish = z
  .union([z.string(), z.number()], { invalid_type_error: 'must be a string or number' })
  .transform(String);

const provisionPasswdFile = z
  .object({
    kind: z.literal('passwd-file'),
    path: path('the Dovecot passwd-file new accounts are added to'),
    scheme: z
      .string({ invalid_type_error: 'must be a Dovecot password scheme name' })
      .regex(
        /^[A-Z0-9-]+$/,
        'is not a Dovecot password scheme (e.g. SHA512-CRYPT, ARGON2ID, BLF-CRYPT)',
      )
      .default('SHA512-CRYPT'),
    uid: stringish.optional(),
    gid: stringish.optional(),
    home: z.string().optional(),
  })
  .strict();

const provisionCommand = z
  .object({
    kind: z.literal('command'),
    command: z
      .array(z.string().min(1, 'is an empty argument'), {
        invalid_type_error: 'must be a list: [/usr/local/sbin/mkuser, --quota, 1G]',
        required_error:
          'is required for kind: command (argv; the address is appended, the password goes to stdin)',
      })
      .min(1, 'is empty; give the program to run and its arguments'),
  })
  .strict();

const provisionNone = z.object({ kind: z.literal('none') }).strict();

export const provisionSchema = z.discriminatedUnion(
  'kind',
  [provisionPasswdFile, provisionCommand, provisionNone],
  {
    errorMap: (issue, ctx) =>
      issue.code === z.ZodIssueCode.invalid_union_discriminator
        ? { message: 'must be passwd-file, command or none' }
        : { message: ctx.defaultError },
  },
);

export const masterSchema = z
  .object({
    user: z
      .string({ required_error: 'is required: the Dovecot master user name' })
      .min(1, 'is empty'),
    passwordFile: path('the file holding the master password').optional(),
    passwordEnv: envName.optional(),
    separator: z.string().min(1, 'is empty; Dovecot default is "*"').default('*'),
  })
  .strict();

export const sourceSchema = z
  .object({
    imap: endpoint(['imap'], 'imap://host:143?tls=starttls or imaps://host:993').optional(),
    pop3: endpoint(['pop3'], 'pop3://host:110?tls=starttls or pop3s://host:995').optional(),
    smtp: endpoint(['smtp'], 'smtp://host:25').optional(),
    submission: endpoint(['smtp'], 'submission://host:587 or smtps://host:465').optional(),
    useImap: z.boolean({ invalid_type_error: 'must be true or false' }).optional(),
  })
  .strict();

export const destinationSchema = z
  .object({
    imap: endpoint(['imap'], 'imap://host:143?tls=starttls or imaps://host:993'),
    pop3: endpoint(['pop3'], 'pop3://host:110 or pop3s://host:995').optional(),
    smtp: endpoint(['smtp', 'lmtp'], 'lmtp://host:24 or smtp://host:25').optional(),
    submission: endpoint(['smtp'], 'submission://host:587').optional(),
    provision: provisionSchema,
    master: masterSchema.optional(),
  })
  .strict();

export const LISTENERS = [
  'imap',
  'imaps',
  'pop3',
  'pop3s',
  'smtp',
  'submission',
  'submissions',
] as const;
/** listeners that start TLS at connect and so cannot run without a certificate */
export const IMPLICIT_TLS_LISTENERS = ['imaps', 'pop3s', 'submissions'] as const;

export const listenSchema = z
  .object(
    Object.fromEntries(LISTENERS.map((k) => [k, listenAddress.optional()])) as Record<
      (typeof LISTENERS)[number],
      z.ZodOptional<typeof listenAddress>
    >,
  )
  .strict();

const cidr = z
  .string({ invalid_type_error: 'must be an address or block string, e.g. "10.0.0.0/8"' })
  .superRefine((value, ctx) => {
    const parsed = parseCidr(value);
    if (typeof parsed === 'string') ctx.addIssue({ code: z.ZodIssueCode.custom, message: parsed });
  });

/**
 * PROXY protocol (HAProxy proxy-protocol.txt v1 and v2) in front of some listeners. Never
 * guessed: a listener named here takes connections only from `trusted` and only with a header.
 */
export const proxyProtocolSchema = z
  .object({
    listeners: z
      .array(
        z.enum(LISTENERS, {
          errorMap: () => ({ message: `must be one of ${LISTENERS.join(', ')}` }),
        }),
        { invalid_type_error: 'must be a list of listener names: [imap, submission]' },
      )
      .min(1, 'is empty; name the listeners that sit behind the proxy, or drop proxyProtocol'),
    trusted: z
      .array(cidr, {
        invalid_type_error: 'must be a list of addresses or blocks: ["10.0.0.0/8", "::1"]',
        required_error: 'is required: the addresses of the proxies allowed to send a header',
      })
      .min(1, 'is empty; list the addresses of the proxies (HAProxy, nginx) in front'),
  })
  .strict();

/**
 * Client addresses exempt from the per-address login brakes (login/brakes.ts point 5), as
 * Dovecot's login_trusted_networks: hosts that log in for many users (webmail, an office NAT).
 */
export const brakesSchema = z
  .object({
    trusted: z
      .array(cidr, {
        invalid_type_error:
          'must be a list of addresses or blocks: ["192.0.2.10", "10.1.0.0/16", "2001:db8::/48"]',
      })
      .default([]),
  })
  .strict();

export const configSchema = z
  .object({
    source: sourceSchema,
    destination: destinationSchema,
    listen: listenSchema.default({}),
    tls: z
      .object({
        cert: path('the PEM certificate (chain) the listeners present'),
        key: path('the PEM private key of that certificate'),
      })
      .strict()
      .optional(),
    domains: z
      .array(domain, {
        invalid_type_error: 'must be a list of domains: [example.org, example.net]',
      })
      .min(1, 'is empty; list the mail domains AutoPort accepts mail for'),
    strategy: z
      .enum(['proxy', 'immediate'], {
        errorMap: () => ({
          message: 'must be proxy (splice to the source, copy in the background) or immediate',
        }),
      })
      .default('proxy'),
    state: path('the account state file, or a postgresql:// URL').default('state.json'),
    // the folder for what lives beside the state (ledger, side files, socket, logs)
    stateDir: path('the folder for the ledger, side files, logs and socket').optional(),
    // the PostgreSQL password, never in the URL (see secrets.ts)
    statePasswordFile: path('the file holding the PostgreSQL password').optional(),
    statePasswordEnv: envName.optional(),
    // this gateway among several on one PostgreSQL (state/pg-cluster.ts)
    node: z
      .object({
        name: z
          .string()
          .min(1)
          .max(64)
          .regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, . _ - only')
          .optional(),
        heartbeatSeconds: positiveInt('seconds between heartbeats', 60).default(2),
        leaseSeconds: positiveInt(
          'seconds without a heartbeat before a node counts as dead',
          3600,
        ).default(15),
      })
      .strict()
      .refine((n) => n.leaseSeconds >= 2 * n.heartbeatSeconds, {
        message: 'leaseSeconds must be at least twice heartbeatSeconds',
      })
      .default({}),
    keyFile: path('the key file that encrypts stored credentials').default('autoport.key'),
    logDir: path('the folder for event logs').optional(),
    transfer: z
      .object({
        connections: positiveInt('IMAP connections per side for one account', 16).default(2),
        concurrency: positiveInt('accounts moved at once', 256).default(2),
      })
      .strict()
      .default({}),
    gateway: z
      .object({
        // RFC 3501 6.2.3 / RFC 2595: LOGINDISABLED and no USER before TLS when refused
        plaintextLogin: z
          .enum(['always', 'loopback', 'never'], {
            errorMap: () => ({
              message:
                'must be always, loopback (plain-text logins only from 127.0.0.0/8 and ::1) or never',
            }),
          })
          .optional(),
        destinationLogin: z
          .enum(['user', 'master'], {
            errorMap: () => ({ message: 'must be user or master (destination.master)' }),
          })
          .default('user'),
        forwardClient: z
          .object({
            source: z.boolean({ invalid_type_error: 'must be true or false' }).default(true),
            destination: z.boolean({ invalid_type_error: 'must be true or false' }).default(true),
          })
          .strict()
          .default({}),
      })
      .strict()
      .default({}),
    proxyProtocol: proxyProtocolSchema.optional(),
    brakes: brakesSchema.optional(),
    smtp: z
      .object({
        // RFC 1870: advertised with SIZE, enforced at MAIL FROM (SIZE=) and during DATA
        maxMessageBytes: positiveInt('largest message accepted, in bytes', 2 ** 31 - 1).default(
          50 * 1024 * 1024,
        ),
      })
      .strict()
      .default({}),
    control: z
      .object({
        // the Unix socket other autoport commands and the monitor use while the proxy runs
        socket: path('the control socket').optional(),
        // Prometheus /metrics and /healthz; false turns the HTTP endpoint off
        metrics: z.union([z.literal(false), listenAddress]).default('127.0.0.1:9465'),
      })
      .strict()
      .default({}),
    timeouts: z
      .object({
        connectMs: positiveInt('milliseconds', 600_000).default(10_000),
        greetingMs: positiveInt('milliseconds', 600_000).default(10_000),
        commandMs: positiveInt('milliseconds', 3_600_000).default(60_000),
        idleMs: positiveInt('milliseconds', 86_400_000).default(1_800_000),
      })
      .strict()
      .default({}),
  })
  .strict();

export type RawConfig = z.input<typeof configSchema>;
export type ParsedConfig = z.output<typeof configSchema>;
