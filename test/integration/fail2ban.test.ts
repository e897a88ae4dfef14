/**
 * deploy/fail2ban against Debian's real fail2ban: the filter matches every failed-login
 * line the real logger writes, in each format and as the journal hands it over, takes the
 * address from the client field (never from a user name built to look like one), and
 * matches nothing else. The jail file loads, reading the unit's journal.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { LogFormat } from '../../src/core/log/index.js';
import { loginLogLines, type LoggedLines } from '../support/login-log-lines.js';
import { ensureOsPackages } from '../support/os-packages.js';
import { makeTempDir, removeDir } from '../support/tmp.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const FILTER = join(ROOT, 'deploy/fail2ban/filter.d/autoport.conf');
const JAIL = join(ROOT, 'deploy/fail2ban/jail.d/autoport.conf');

/** The addresses fail2ban-regex takes from `lines` (one per matched line). */
function matchedIps(config: string, dir: string, lines: string[], filter = 'autoport'): string[] {
  const log = join(dir, `log-${Math.random().toString(36).slice(2)}`);
  writeFileSync(log, lines.map((l) => (l.endsWith('\n') ? l : `${l}\n`)).join(''));
  const r = spawnSync('fail2ban-regex', ['-c', config, '-o', 'ip', log, filter], {
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, `fail2ban-regex failed: ${r.stderr}`);
  return r.stdout.split('\n').filter(Boolean);
}

/** What journald keeps of a line (the sd-daemon prefix becomes PRIORITY) and the priority. */
function journald(line: string): { priority: number; message: string } {
  const m = /^<([0-7])>(.*)\n$/s.exec(line);
  assert.ok(m, `no priority prefix: ${line}`);
  return { priority: Number(m[1]), message: m[2]! };
}

/**
 * As fail2ban's systemd backend reads an entry ("HOST IDENTIFIER[PID]: MESSAGE",
 * filtersystemd.py formatJournalEntry), with the date in front, as rsyslog writes the same
 * entry to /var/log/syslog.
 */
const journalLine = (message: string): string =>
  `Dec  3 09:00:00 mailhost autoport[4242]: ${message}`;

describe('fail2ban filter for failed logins', { timeout: 120_000 }, () => {
  let dir: string;
  let config: string;

  before(() => {
    ensureOsPackages();
    dir = makeTempDir('fail2ban');
    config = join(dir, 'fail2ban');
    mkdirSync(join(config, 'filter.d'), { recursive: true });
    // the filter includes common.conf, as every filter in Debian's fail2ban does
    copyFileSync('/etc/fail2ban/filter.d/common.conf', join(config, 'filter.d/common.conf'));
    copyFileSync(FILTER, join(config, 'filter.d/autoport.conf'));
  });

  after(() => removeDir(dir));

  function check(lines: LoggedLines, shape: (l: string) => string, filter?: string): void {
    assert.deepEqual(
      matchedIps(
        config,
        dir,
        lines.failed.map((f) => shape(f.line)),
        filter,
      ),
      lines.failed.map((f) => f.ip),
      'every failed login, with its client address',
    );
    assert.deepEqual(matchedIps(config, dir, lines.others.map(shape), filter), [], 'no other line');
  }

  for (const format of ['json', 'logfmt', 'human'] as LogFormat[]) {
    it(`${format} lines in a file`, () => {
      const lines = loginLogLines(format);
      assert.equal(lines.failed.length, 4);
      assert.ok(lines.others.length >= 8, 'successful logins, other refusals, errors');
      check(lines, (l) => l);
    });
  }

  it('the journal: priority warning, JSON message, read by the systemd backend', () => {
    const lines = loginLogLines('json', true);
    for (const f of lines.failed) assert.equal(journald(f.line).priority, 4, 'warning');
    const priorities = new Set(lines.others.map((l) => journald(l).priority));
    assert.deepEqual([...priorities].sort(), [3, 4, 6], 'errors, other warnings, info lines');
    const shape = (l: string): string => journalLine(journald(l).message);
    check(lines, shape, 'autoport[logtype=journal]');
    // the same entries forwarded to /var/log/syslog
    check(lines, shape);
  });

  it('the jail loads: the journal of autoport.service, the mail ports', () => {
    const etc = join(dir, 'etc');
    cpSync('/etc/fail2ban', etc, { recursive: true });
    copyFileSync(FILTER, join(etc, 'filter.d/autoport.conf'));
    copyFileSync(JAIL, join(etc, 'jail.d/autoport.conf'));
    const r = spawnSync('fail2ban-client', ['-c', etc, '-d'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const dump = r.stdout;
    assert.ok(dump.includes("['add', 'autoport', 'systemd']"), dump);
    assert.ok(
      dump.includes("['set', 'autoport', 'addjournalmatch', '_SYSTEMD_UNIT=autoport.service']"),
    );
    assert.match(dump, /--dports smtp,465,submission,pop3,pop3s,imap,imaps/);
    assert.ok(!dump.includes("'autoport-file'"), 'the file variant is off by default');
  });
});
