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
