/**
 * nginx's mail proxy in front of a Dovecot, for comparison (Debian: nginx and
 * libnginx-mod-mail). nginx asks an HTTP auth service where to send each login; a tiny
 * responder here always answers "the source". Rejects when nginx or its mail module is
 * missing, so the benchmark can go on without it.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import type { DovecotInstance } from '../test/support/index.js';
import { freePorts, makeTempDir, removeDir, waitForGreeting } from '../test/support/index.js';

export interface NginxMail {
  port: number;
  pids(): number[];
  stop(): Promise<void>;
}

function mailModule(): string {
  for (const dir of ['/usr/lib/nginx/modules', '/usr/share/nginx/modules']) {
    if (!existsSync(dir)) continue;
    const f = readdirSync(dir).find((n) => n.includes('mail') && n.endsWith('.so'));
    if (f) return join(dir, f);
  }
  throw new Error('libnginx-mod-mail is not installed (apt-get install nginx libnginx-mod-mail)');
}

export async function startNginxMail(src: DovecotInstance): Promise<NginxMail> {
  execFileSync('nginx', ['-v'], { stdio: 'ignore' });
  const module = mailModule();
  const dir = makeTempDir('nginx');
  const [port, authPort] = await freePorts(2);
  const auth = createServer((_req, res) => {
    res.writeHead(200, {
      'Auth-Status': 'OK',
      'Auth-Server': '127.0.0.1',
      'Auth-Port': String(src.ports.imap),
    });
    res.end();
  });
  await new Promise<void>((r) => auth.listen(authPort, '127.0.0.1', r));
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `load_module ${module};
daemon off;
worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 20000; }
mail {
  server_name bench.test;
  auth_http 127.0.0.1:${authPort}/auth;
  proxy_pass_error_message on;
  imap_capabilities IMAP4rev1 LITERAL+ SASL-IR ID;
  server { listen 127.0.0.1:${port}; protocol imap; }
}
`,
  );
  const child = spawn('nginx', ['-c', conf, '-p', dir], { stdio: 'ignore' });
  await waitForGreeting(port!, /^\* OK/);
  const pids = (): number[] => {
    const out = [child.pid!];
    try {
      out.push(
        ...readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8')
          .trim()
          .split(/\s+/)
          .filter(Boolean)
          .map(Number),
      );
    } catch {
      /* gone */
    }
    return out;
  };
  return {
    port: port!,
    pids,
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      auth.close();
      removeDir(dir);
    },
  };
}
