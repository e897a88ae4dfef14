/**
 * POP3 UIDL continuity (issue #12 item 2) with the real fetchmail: `keep`, UIDLs in a
 * .fetchids file, through the gateway before and after the account is moved. After the
 * move the destination's own UIDLs differ from the source's (shown here by pointing the
 * same fetchmail at the destination directly: it would download the whole inbox again);
 * through the gateway the second run downloads nothing, and a message delivered after the
 * move is downloaded once. Both copy paths (IMAP, and the POP3 fallback) record the map;
 * two identical messages cannot be told apart: counted, reported, and downloaded again.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { loadUidls } from '../../src/core/transfer/uidl/store.js';
import { makeMessage, openImap } from '../support/index.js';
import { FAST_BRAKES, nextEvent, type ProxyLab, startProxyLab } from './proxy-support.js';

const run = promisify(execFile);
const FETCHMAIL = '/usr/bin/fetchmail';
const alice = { user: 'alice@example.org', password: 'alice-secret' };
const INBOX_SIZE = 14;

/** One fetchmail run (keep, UIDL) against `port`; returns how many messages it delivered. */
async function fetchmail(dir: string, port: number, ids: string): Promise<number> {
  const count = join(dir, 'count');
  const rc = join(dir, 'fetchmailrc');
  writeFileSync(
    rc,
    [
      'set no syslog',
      `poll 127.0.0.1 service ${port} protocol POP3 uidl auth password`,
      `  user "${alice.user}" there with password "${alice.password}" is "alice" here`,
      `  keep sslproto ''`,
      `  mda "/bin/sh -c 'cat >/dev/null; echo m >> ${count}'"`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  const before = existsSync(count) ? readFileSync(count, 'latin1').length : 0;
  const env = { ...process.env, HOME: dir, FETCHMAILHOME: dir };
  try {
    await run(FETCHMAIL, ['-f', rc, '-i', ids, '--nosyslog'], { env, timeout: 60_000 });
  } catch (err) {
    // exit code 1: no new mail (fetchmail(1) EXIT CODES); anything else is a failure
    if ((err as { code?: number }).code !== 1) throw err;
  }
  const after = existsSync(count) ? readFileSync(count, 'latin1').length : 0;
  return (after - before) / 2;
}

interface Scenario {
  name: string;
  /** YAML overrides beside the destination's POP3 */
  source?: Record<string, unknown>;
  /** identical messages added to the source inbox: their pairing is ambiguous */
  twins: number;
}

function scenario({ name, source, twins }: Scenario): void {
  describe(`fetchmail keeps its UIDLs across the move (${name})`, { timeout: 300_000 }, () => {
    let p: ProxyLab;
    let ids: string;
    const total = INBOX_SIZE + twins;
    before(async () => {
      p = await startProxyLab({
        lab: {
          users: [alice],
          // the formats made explicit and different: Dovecot's default on both sides gives
          // equal UIDLs when both INBOXes got their UIDVALIDITY in the same second
          sourceQuirks: { extraConfig: 'pop3_uidl_format = %08Xu%08Xv' },
          destinationQuirks: { extraConfig: 'pop3_uidl_format = %v.%u' },
        },
        workers: true,
        config: (lab) => ({
          ...(source && { source }),
          destination: { pop3: lab.destination.urls.pop3 },
        }),
        deps: { limits: { ...FAST_BRAKES, workerPollMs: 100 } },
      });
      ids = join(p.lab.dir, 'fetchids');
      const c = await openImap(p.lab.source, alice);
      try {
        for (let i = 1; i <= INBOX_SIZE; i++) {
          await c.append('INBOX', makeMessage({ subject: `before the move ${i}`, size: 300 * i }));
        }
        const twin = makeMessage({ subject: 'twice the same', date: new Date(0) });
        for (let i = 0; i < twins; i++) await c.append('INBOX', twin);
      } finally {
        await c.logout();
      }
    });
    after(async () => {
      await p?.stop();
    });

    it('the first run, at the source through the gateway, downloads the inbox', async () => {
      const moved = nextEvent(p, 'transfer.finished', (e) => e.address === alice.user, 120_000);
      assert.equal(await fetchmail(p.lab.dir, p.pop3Port, ids), total);
      const fin = await moved;
      assert.equal(fin.ok, true, fin.detail);
      assert.equal((await p.store.get(alice.user))?.state, 'migrated');
      const map = await loadUidls(p.store, alice.user);
      assert.equal(map?.matched, INBOX_SIZE);
      assert.equal(map?.ambiguous, twins);
      if (twins) assert.match(p.logText(), new RegExp(`INBOX: ${twins} messages match several`));
    });

    it("the destination's own UIDLs differ: fetchmail straight at it would fetch all again", async () => {
      const copy = join(p.lab.dir, 'fetchids-direct');
      copyFileSync(ids, copy);
      assert.equal(await fetchmail(p.lab.dir, p.lab.destination.ports.pop3, copy), total);
    });

    it('after the move, through the gateway: nothing again (but ambiguous twins); a new message once', async () => {
      const route = nextEvent(p, 'session.route', (e) => e.user === alice.user, 120_000);
      assert.equal(await fetchmail(p.lab.dir, p.pop3Port, ids), twins);
      assert.equal((await route).target, 'destination');

      const d = await openImap(p.lab.destination, alice);
      try {
        await d.append('INBOX', makeMessage({ subject: 'after the move' }));
      } finally {
        await d.logout();
      }
      assert.equal(await fetchmail(p.lab.dir, p.pop3Port, ids), 1);
      assert.equal(await fetchmail(p.lab.dir, p.pop3Port, ids), 0);
    });
  });
}

scenario({ name: 'IMAP copy', twins: 0 });
// the copy engine's POP3 fallback (source.useImap false); two identical messages
scenario({ name: 'POP3 copy', source: { useImap: false }, twins: 2 });
