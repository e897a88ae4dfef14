/**
 * A throwaway CA and a server certificate for 127.0.0.1 / localhost, made once per process
 * with openssl, so test servers can speak TLS and clients can verify them (pass `ca`).
 */
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { makeTempDir, onProcessExit, removeDir } from './tmp.js';

const run = promisify(execFile);

export interface TestTls {
  dir: string;
  caFile: string;
  certFile: string;
  keyFile: string;
  /** the CA certificate, PEM: give it to clients as `ca` */
  ca: string;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await run('openssl', args, { cwd });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`openssl ${args[0]} failed: ${e.stderr?.trim() || e.message}`);
  }
}

async function make(): Promise<TestTls> {
  const dir = makeTempDir('tls');
  onProcessExit(() => removeDir(dir));
  const f = (n: string): string => join(dir, n);
  const days = '3650';
  await openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-sha256',
      '-days',
      days,
      '-subj',
      '/CN=AutoPort Test CA',
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  await openssl(
    [
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-sha256',
      '-subj',
      '/CN=localhost',
      '-keyout',
      'server.key',
      '-out',
      'server.csr',
    ],
    dir,
  );
  // SAN, not CN, is what TLS clients check (RFC 6125 6.4.4): cover the IP and the name.
  writeFileSync(
    f('server.ext'),
    [
      'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost',
      'basicConstraints=CA:FALSE',
      'keyUsage=digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth',
      '',
    ].join('\n'),
  );
  await openssl(
    [
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      days,
      '-sha256',
      '-extfile',
      'server.ext',
      '-out',
      'server.pem',
    ],
    dir,
  );
  return {
    dir,
    caFile: f('ca.pem'),
    certFile: f('server.pem'),
    keyFile: f('server.key'),
    ca: readFileSync(f('ca.pem'), 'utf8'),
  };
}

let cached: Promise<TestTls> | undefined;

/** The process-wide test CA and server certificate (created on first use). */
export function testTls(): Promise<TestTls> {
  cached ??= make().catch((err: unknown) => {
    cached = undefined;
    throw err;
  });
  return cached;
}
