/**
 * The PROXY protocol header parser (HAProxy proxy-protocol.txt v1 and v2), the gate that
 * reads it from a real socket, and the CIDR matching the trusted list uses.
 */
import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { ProxyGate } from '../../src/core/listen/proxy-gate.js';
import { parseProxyHeader, readProxyHeader } from '../../src/core/listen/proxy-protocol.js';
import { cidrContains, parseCidr, type Cidr } from '../../src/core/net-address.js';
import { v2 } from '../support/proxy-header.js';

const SIG = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

const parse = (b: Buffer | string, max = 2048) =>
  parseProxyHeader(typeof b === 'string' ? Buffer.from(b, 'latin1') : b, max);

describe('PROXY protocol v1', () => {
  it('takes TCP4 and TCP6 with their ports', () => {
    assert.deepEqual(parse('PROXY TCP4 192.0.2.7 198.51.100.1 40000 143\r\nA1 CAPA'), {
      kind: 'done',
      header: {
        version: 1,
        length: 45,
        client: { address: '192.0.2.7', port: 40000 },
        server: { address: '198.51.100.1', port: 143 },
      },
    });
    const six = parse('PROXY TCP6 2001:db8::7 2001:db8::1 1 993\r\n');
    assert.equal(six.kind === 'done' && six.header.client?.address, '2001:db8::7');
  });

  it('UNKNOWN: the connection counts as it is', () => {
    const r = parse('PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n');
    assert.deepEqual(r, { kind: 'done', header: { version: 1, length: 35 } });
    assert.equal(parse('PROXY UNKNOWN\r\n').kind, 'done');
  });

  it('asks for more on every prefix of a header', () => {
    const h = 'PROXY TCP4 192.0.2.7 198.51.100.1 40000 143\r\n';
    for (let i = 0; i < h.length; i++)
      assert.equal(parse(h.slice(0, i)).kind, 'more', h.slice(0, i));
  });

  it('refuses what is not a header, on the first bytes that show it', () => {
    for (const bad of [
      'A1 LOGIN',
      'EHLO x\r\n',
      'proxy TCP4',
      'PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n',
      'PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n',
      'PROXY TCP4 1.2.3.4  1.2.3.4 1 2\r\n',
      'PROXY TCP4 2001:db8::1 1.2.3.4 1 2\r\n',
      'PROXY TCP6 1.2.3.4 1.2.3.4 1 2\r\n',
      'PROXY TCP4 1.2.3.4 1.2.3.4 65536 2\r\n',
      'PROXY TCP4 1.2.3.4 1.2.3.4 01 2\r\n',
      'PROXY TCP4 1.2.3.4 1.2.3.4 1 2 3\r\n',
      'PROXY TCP4 1.2.3.999 1.2.3.4 1 2\r\n',
    ])
      assert.equal(parse(bad).kind, 'invalid', bad);
  });

  it('refuses a line over 107 bytes without waiting for its end', () => {
    assert.equal(parse(`PROXY UNKNOWN ${'x'.repeat(92)}`).kind, 'more');
    assert.equal(parse(`PROXY UNKNOWN ${'x'.repeat(93)}`).kind, 'invalid');
    assert.equal(parse(`PROXY UNKNOWN ${'x'.repeat(91)}\r\n`).kind, 'done'); // 107 bytes
    assert.equal(parse(`PROXY UNKNOWN ${'x'.repeat(92)}\r\n`).kind, 'invalid');
  });
});

describe('PROXY protocol v2', () => {
  it('takes INET and INET6 PROXY headers and skips TLVs', () => {
    const tlv = Buffer.from([0x20, 0x00, 0x05, 0x01, 0, 0, 0, 0]); // PP2_TYPE_SSL
    const r = parse(Buffer.concat([v2({ tlv }), Buffer.from('* OK')]));
    assert.deepEqual(r, {
      kind: 'done',
      header: {
        version: 2,
        length: 16 + 12 + 8,
        client: { address: '192.0.2.7', port: 40000 },
        server: { address: '198.51.100.1', port: 143 },
      },
    });
    const six = parse(v2({ fam: 0x21, client: ['2001:db8::7', 5], server: ['::1', 993] }));
    assert.equal(six.kind, 'done');
    if (six.kind === 'done') {
      assert.deepEqual(six.header.client, { address: '2001:db8::7', port: 5 });
      assert.deepEqual(six.header.server, { address: '::1', port: 993 });
    }
    const mapped = parse(v2({ fam: 0x21, client: ['::ffff:c000:207', 5] }));
    assert.equal(mapped.kind === 'done' && mapped.header.client?.address, '192.0.2.7');
  });

  it('LOCAL (a health check), UNSPEC and UNIX: the connection counts as it is', () => {
    for (const h of [v2({ cmd: 0 }), v2({ fam: 0x00 }), v2({ cmd: 0, fam: 0x00 })]) {
      const r = parse(h);
      assert.equal(r.kind, 'done');
      assert.equal(r.kind === 'done' && r.header.client, undefined);
    }
    const unix = Buffer.concat([SIG, Buffer.from([0x21, 0x31, 0, 216]), Buffer.alloc(216)]);
    assert.equal(parse(unix).kind === 'done' && parse(unix).kind, 'done');
  });

  it('asks for more on every prefix', () => {
    const h = v2();
    for (let i = 0; i < h.length; i++) assert.equal(parse(h.subarray(0, i)).kind, 'more');
  });

  it('refuses a wrong version, command, transport, short block or a header over the cap', () => {
    assert.equal(parse(v2({ ver: 1 })).kind, 'invalid');
    assert.equal(parse(v2({ cmd: 2 })).kind, 'invalid');
    assert.equal(parse(v2({ fam: 0x12 })).kind, 'invalid'); // DGRAM
    assert.equal(parse(v2({ fam: 0x41 })).kind, 'invalid');
    const short = Buffer.concat([SIG, Buffer.from([0x21, 0x11, 0, 4]), Buffer.alloc(4)]);
    assert.equal(parse(short).kind, 'invalid');
    const big = v2({ tlv: Buffer.alloc(3000) });
    assert.equal(parse(big.subarray(0, 16)).kind, 'invalid');
    assert.equal(parse(big, 4096).kind, 'done');
    assert.equal(parse(Buffer.from('0d0a0d0a000d0a5155495478', 'hex')).kind, 'invalid');
  });
});

describe('CIDR blocks', () => {
  const block = (s: string): Cidr => {
    const c = parseCidr(s);
    assert.notEqual(typeof c, 'string', s);
    return c as Cidr;
  };
  it('matches IPv4, IPv6 and IPv4-mapped addresses', () => {
    assert.ok(cidrContains(block('10.0.0.0/8'), '10.200.3.4'));
    assert.ok(!cidrContains(block('10.0.0.0/8'), '11.0.0.1'));
    assert.ok(cidrContains(block('10.0.0.0/8'), '::ffff:10.1.2.3'));
    assert.ok(cidrContains(block('127.0.0.1'), '127.0.0.1'));
    assert.ok(!cidrContains(block('127.0.0.1'), '127.0.0.2'));
    assert.ok(cidrContains(block('192.168.4.0/22'), '192.168.7.255'));
    assert.ok(!cidrContains(block('192.168.4.0/22'), '192.168.8.0'));
    assert.ok(cidrContains(block('0.0.0.0/0'), '203.0.113.9'));
    assert.ok(!cidrContains(block('0.0.0.0/0'), '2001:db8::1'));
    assert.ok(cidrContains(block('2001:db8::/32'), '2001:db8:ffff::1'));
    assert.ok(!cidrContains(block('2001:db8::/33'), '2001:db8:8000::1'));
    assert.ok(cidrContains(block('::1'), '::1'));
    assert.ok(!cidrContains(block('::1'), '127.0.0.1'));
    assert.ok(!cidrContains(block('10.0.0.0/8'), undefined));
    assert.ok(!cidrContains(block('10.0.0.0/8'), 'unknown'));
  });
  it('says what is wrong with a bad block', () => {
    assert.match(String(parseCidr('10.0.0.0/33')), /prefix length must be 0-32/);
    assert.match(String(parseCidr('::/129')), /0-128/);
    assert.match(String(parseCidr('10.0.0/8')), /not an IP address/);
    assert.match(String(parseCidr('10.0.0.0/8/1')), /not an address/);
    assert.match(String(parseCidr('10.0.0.0/x')), /prefix length/);
    assert.match(String(parseCidr('proxy.example.org')), /not an IP address/);
  });
});

describe('reading the header from a socket', () => {
  let server: Server;
  let port = 0;
  const accepted: Array<(s: Socket) => void> = [];
  before(async () => {
    server = createServer((s) => accepted.shift()?.(s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  const next = (): Promise<Socket> => new Promise((r) => accepted.push(r));
  const limits = { proxyHeaderMs: 300, maxProxyHeaderBytes: 2048, maxProxyPending: 2 };

  it('hands on the bytes after the header, and refuses silence after the deadline', async () => {
    const got = next();
    const c = connect(port, '127.0.0.1');
    c.write('PROXY TCP4 192.0.2.7 127.0.0.1 40000 143\r\nA1 NOOP\r\n');
    const s = await got;
    const r = await readProxyHeader(s, { timeoutMs: 1000, maxBytes: 2048 });
    assert.equal(r.ok && r.header.client?.address, '192.0.2.7');
    const rest = await new Promise<string>((res) => s.once('data', (d) => res(String(d))));
    assert.equal(rest, 'A1 NOOP\r\n');
    c.destroy();
    s.destroy();

    const got2 = next();
    const c2 = connect(port, '127.0.0.1');
    const s2 = await got2;
    const t0 = Date.now();
    const r2 = await readProxyHeader(s2, { timeoutMs: 200, maxBytes: 2048 });
    assert.deepEqual(r2, { ok: false, reason: 'no PROXY header in time', received: 0 });
    assert.ok(Date.now() - t0 < 1000);
    c2.destroy();
    s2.destroy();
  });

  it('the gate: untrusted peers, too many waiting per proxy, LOCAL', async () => {
    const untrusted = new ProxyGate(['10.0.0.0/8'], () => limits);
    const got = next();
    const c = connect(port, '127.0.0.1');
    const s = await got;
    const r = await untrusted.admit(s);
    assert.equal(!r.ok && r.reason, 'untrusted');
    assert.ok(!untrusted.isTrusted('127.0.0.1'));
    untrusted.setTrusted(['10.0.0.0/8', '127.0.0.0/8']);
    assert.ok(untrusted.isTrusted('127.0.0.1'));
    assert.throws(() => untrusted.setTrusted(['127.0.0.0/40']), /prefix length/);
    assert.ok(untrusted.isTrusted('127.0.0.1'), 'a bad list keeps the old one');
    c.destroy();
    s.destroy();

    const gate = new ProxyGate(['127.0.0.0/8'], () => limits);
    const clients: Socket[] = [];
    const servers: Socket[] = [];
    const waits: Array<ReturnType<ProxyGate['admit']>> = [];
    for (let i = 0; i < 3; i++) {
      const g = next();
      clients.push(connect(port, '127.0.0.1'));
      servers.push(await g);
      waits.push(gate.admit(servers[i]!));
    }
    const third = await waits[2]!;
    assert.equal(!third.ok && third.reason, 'busy');
    assert.equal(gate.waiting(), 2);
    clients[0]!.write(v2({ cmd: 0 }));
    const local = await waits[0]!;
    assert.ok(local.ok);
    assert.equal(local.ok && local.peer.address, '127.0.0.1');
    assert.equal(local.ok && local.peer.port, clients[0]!.localPort);
    clients[1]!.write(v2({ client: ['203.0.113.9', 5555], server: ['198.51.100.1', 993] }));
    const proxied = await waits[1]!;
    assert.deepEqual(proxied.ok && proxied.peer, {
      address: '203.0.113.9',
      port: 5555,
      localAddress: '198.51.100.1',
      localPort: 993,
    });
    assert.equal(gate.waiting(), 0);
    for (const x of [...clients, ...servers]) x.destroy();
  });
});
