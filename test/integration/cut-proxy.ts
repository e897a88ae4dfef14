/**
 * A TCP proxy in front of a real server that drops connections on purpose: the first
 * `cuts` connections whose server-to-client traffic passes `afterBytes` are destroyed at
 * that point (mid-FETCH when the threshold is above any listing's size).
 */
import net from 'node:net';

export interface CutProxy {
  port: number;
  /** connections cut so far */
  readonly cut: number;
  close(): Promise<void>;
}

export async function startCutProxy(
  target: { host: string; port: number },
  opts: { afterBytes: number; cuts: number },
): Promise<CutProxy> {
  let cut = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    sockets.add(client).add(upstream);
    let down = 0;
    const destroy = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (d) => upstream.write(d));
    upstream.on('data', (d: Buffer) => {
      down += d.length;
      if (cut < opts.cuts && down > opts.afterBytes) {
        cut++;
        // deliver part of the chunk so the cut lands inside a literal
        client.write(d.subarray(0, Math.floor(d.length / 2)), destroy);
        return;
      }
      client.write(d);
    });
    client.on('close', destroy).on('error', destroy);
    upstream.on('close', destroy).on('error', destroy);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    get cut() {
      return cut;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/**
 * Where a fault strikes: the nth match of `match` in the bytes going `dir` ('up': gateway
 * to server, 'down': server to gateway), or at once when the connection is accepted
 * ('accept': before the server's greeting; the real server is never contacted).
 */
export type FaultTrigger =
  | { dir: 'accept' }
  | {
      dir: 'up' | 'down';
      match: RegExp;
      /** which match (1 = the first) */
      nth?: number;
      /**
       * how much of the stream passes before the fault: 'before' the match, 'through' its
       * end, or that many bytes past its end (to land inside a literal)
       */
      pass?: 'before' | 'through' | number;
    };

export interface FaultScript {
  trigger: FaultTrigger;
  /**
   * 'close' both sockets; 'stall': forward nothing more either way and keep both open
   * (the server is no longer read; what the gateway sends is read and dropped, so its
   * hang-up is seen: faultedOpen); 'jam': as stall, but the gateway's bytes are not read
   * either, so its writes fill the TCP window (its hang-up is not seen then)
   */
  action: 'close' | 'stall' | 'jam';
  /** which connections (1 = the first accepted) get the fault; the others pass untouched */
  connections?: number[];
}

export interface FaultProxy {
  port: number;
  /** faults that struck so far */
  readonly struck: number;
  /** connections accepted so far */
  readonly accepted: number;
  /** faulted connections the gateway has not closed yet (a stalled one it forgot leaks) */
  readonly faultedOpen: number;
  /** what the gateway sent on a stalled connection after the stall (read and dropped) */
  readonly afterStall: string;
  close(): Promise<void>;
}

/** Longest stretch of a stream kept for matching (the tests' triggers are short lines). */
const MATCH_WINDOW = 64 * 1024;

/**
 * A TCP proxy in front of a real server that closes or stalls one connection at a chosen
 * point of the conversation (a greeting, a LOGIN, the second RCPT, inside a FETCH literal,
 * the end of DATA): the faults a real server will not produce on demand.
 */
export async function startFaultProxy(
  target: { host: string; port: number },
  script: FaultScript,
): Promise<FaultProxy> {
  let struck = 0;
  let accepted = 0;
  let faultedOpen = 0;
  let afterStall = '';
  const sockets = new Set<net.Socket>();
  const faulted = new Set(script.connections ?? [1]);
  const server = net.createServer((client) => {
    accepted++;
    sockets.add(client);
    client.on('error', () => undefined);
    client.on('close', () => sockets.delete(client));
    const t = script.trigger;
    if (!faulted.has(accepted)) return pipeBoth(client, net.connect(target.port, target.host));
    faultedOpen++;
    client.on('close', () => faultedOpen--);
    if (t.dir === 'accept') {
      struck++;
      if (script.action === 'close') client.destroy();
      else if (script.action === 'stall') client.resume();
      return;
    }
    const upstream = net.connect(target.port, target.host);
    sockets.add(upstream);
    upstream.on('error', () => undefined);
    upstream.on('close', () => sockets.delete(upstream));
    let stopped = false;
    const destroy = (): void => {
      client.destroy();
      upstream.destroy();
    };
    const strike = (): void => {
      stopped = true;
      struck++;
      if (script.action === 'close') destroy();
      else upstream.pause();
      if (script.action === 'jam') client.pause();
    };
    // `pos` counts the faulted direction's bytes; `cutAt` is where the fault strikes.
    let pos = 0;
    let seen = 0;
    let window = '';
    let windowStart = 0;
    let cutAt: number | undefined;
    const watch = (from: net.Socket, to: net.Socket, faulty: boolean): void => {
      from.on('data', (d: Buffer) => {
        if (stopped) {
          if (from === client && afterStall.length < MATCH_WINDOW)
            afterStall += d.toString('latin1');
          return;
        }
        if (!faulty) return void to.write(d);
        const start = pos;
        pos += d.length;
        if (cutAt === undefined) {
          window += d.toString('latin1');
          const re = new RegExp(t.match.source, t.match.flags.replace('g', '') + 'g');
          let m: RegExpExecArray | null;
          let counted = 0;
          let lastEnd = 0;
          while ((m = re.exec(window)) !== null) {
            if (m[0].length === 0) re.lastIndex++;
            lastEnd = re.lastIndex;
            if (++counted + seen < (t.nth ?? 1)) continue;
            const at = windowStart + m.index;
            const p = t.pass ?? 'before';
            cutAt = p === 'before' ? at : at + m[0].length + (p === 'through' ? 0 : p);
            break;
          }
          if (cutAt === undefined) {
            // forget what was matched already, and keep the window bounded
            seen += counted;
            const keepFrom = Math.max(lastEnd, window.length - MATCH_WINDOW);
            if (counted > 0 || window.length > MATCH_WINDOW) {
              window = window.slice(keepFrom);
              windowStart += keepFrom;
            }
          }
        }
        if (cutAt === undefined || cutAt > pos) return void to.write(d);
        const keep = d.subarray(0, Math.max(0, cutAt - start));
        if (keep.length > 0) to.write(keep, strike);
        else strike();
        stopped = true;
      });
    };
    watch(client, upstream, t.dir === 'up');
    watch(upstream, client, t.dir === 'down');
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  const pipeBoth = (a: net.Socket, b: net.Socket): void => {
    sockets.add(b);
    b.on('error', () => undefined);
    b.on('close', () => sockets.delete(b));
    a.pipe(b).pipe(a);
    a.on('close', () => b.destroy());
    b.on('close', () => a.destroy());
  };
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    get struck() {
      return struck;
    },
    get accepted() {
      return accepted;
    },
    get faultedOpen() {
      return faultedOpen;
    },
    get afterStall() {
      return afterStall;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
