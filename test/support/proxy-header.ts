/** PROXY protocol v2 headers for tests, byte for byte as proxy-protocol.txt 2.2 lays them out. */

const SIG = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

/** A v2 header as HAProxy's send-proxy-v2 writes it (proxy-protocol.txt 2.2). */
export function v2(
  opts: {
    cmd?: number;
    fam?: number;
    client?: [string, number];
    server?: [string, number];
    tlv?: Buffer;
    ver?: number;
  } = {},
): Buffer {
  const fam = opts.fam ?? 0x11;
  const [ca, cp] = opts.client ?? ['192.0.2.7', 40000];
  const [sa, sp] = opts.server ?? ['198.51.100.1', 143];
  let addr: Buffer;
  if (fam >> 4 === 1) {
    addr = Buffer.alloc(12);
    Buffer.from(ca.split('.').map(Number)).copy(addr, 0);
    Buffer.from(sa.split('.').map(Number)).copy(addr, 4);
    addr.writeUInt16BE(cp, 8);
    addr.writeUInt16BE(sp, 10);
  } else if (fam >> 4 === 2) {
    addr = Buffer.alloc(36);
    const six = (s: string): Buffer => {
      const [h = '', t = ''] = s.split('::');
      const hg = h ? h.split(':') : [];
      const tg = t ? t.split(':') : [];
      const g = [...hg, ...Array<string>(8 - hg.length - tg.length).fill('0'), ...tg];
      const b = Buffer.alloc(16);
      g.forEach((x, i) => b.writeUInt16BE(parseInt(x, 16), i * 2));
      return b;
    };
    six(ca).copy(addr, 0);
    six(sa).copy(addr, 16);
    addr.writeUInt16BE(cp, 32);
    addr.writeUInt16BE(sp, 34);
  } else addr = Buffer.alloc(0);
  const body = Buffer.concat([addr, opts.tlv ?? Buffer.alloc(0)]);
  const head = Buffer.from([(opts.ver ?? 2) * 16 + (opts.cmd ?? 1), fam, 0, 0]);
  head.writeUInt16BE(body.length, 2);
  return Buffer.concat([SIG, head, body]);
}
