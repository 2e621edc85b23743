// A TCP proxy in front of a real redis-server, for tests that need a network
// fault at a chosen moment rather than by chance: a reply lost after its
// command ran, or a server that stops answering.
//
// Every connection to the proxy gets its own connection upstream. Bytes go
// through unchanged unless the test says otherwise:
// - `swallowAfter(text)`: the first connection that sends `text` upstream
//   (say, a script's SHA-1) gets no reply from then on; its command still
//   reaches the server. `cut()` then closes those connections.
// - `freeze()`: nothing goes through, either way, on any connection, new
//   ones included (a frozen network: the client sees no error, only
//   silence); `thaw()` closes the frozen connections and lets new ones
//   through.

const decoder = new TextDecoder();

interface Pair {
  client: Deno.Conn;
  server: Deno.Conn;
  swallow: boolean;
  closed: boolean;
}

/** A running proxy; `await using` closes it and every connection through it. */
export interface RedisProxy extends AsyncDisposable {
  /** The upstream URL with the proxy's port in place of the server's. */
  readonly url: string;
  /** Resolves when a connection sent `text` upstream; its replies are dropped from then on. */
  swallowAfter(text: string): Promise<void>;
  /** How many times `text` went upstream (as counted since `count(text)` was first called). */
  count(text: string): number;
  /** Closes the connections whose replies are swallowed. */
  cut(): void;
  /** Stops all traffic, keeping connections open. */
  freeze(): void;
  /** Closes the frozen connections and lets traffic through again. */
  thaw(): void;
  /** How many connections the proxy has accepted. */
  readonly accepted: number;
}

/** Starts a proxy on a free loopback port in front of the server of `url`. */
export function startProxy(url: string): RedisProxy {
  const upstream = new URL(url);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const pairs = new Set<Pair>();
  const counts = new Map<string, number>();
  let armed: { text: string; resolve: () => void } | undefined;
  let frozen = false;
  let accepted = 0;

  const close = (pair: Pair) => {
    if (pair.closed) return;
    pair.closed = true;
    pairs.delete(pair);
    for (const conn of [pair.client, pair.server]) {
      try {
        conn.close();
      } catch { /* already closed */ }
    }
  };

  const pump = async (pair: Pair, up: boolean) => {
    const from = up ? pair.client : pair.server;
    const to = up ? pair.server : pair.client;
    const buffer = new Uint8Array(64 * 1024);
    let tail = ""; // the end of the previous chunk, so text split across two is still seen
    try {
      for (;;) {
        const n = await from.read(buffer);
        if (n === null) break;
        if (frozen) continue;
        const chunk = buffer.subarray(0, n);
        if (up) {
          const text = decoder.decode(chunk);
          const seen = tail + text;
          for (const [watched, count] of counts) {
            counts.set(
              watched,
              count + (seen.split(watched).length - 1) - (tail.split(watched).length - 1),
            );
          }
          if (armed && seen.includes(armed.text)) {
            pair.swallow = true;
            armed.resolve();
            armed = undefined;
          }
          tail = seen.slice(-128);
        } else if (pair.swallow) continue;
        await to.write(chunk);
      }
    } catch { /* the other side closed */ }
    close(pair);
  };

  (async () => {
    for await (const client of listener) {
      accepted++;
      let server: Deno.Conn;
      try {
        server = await Deno.connect({ hostname: upstream.hostname, port: Number(upstream.port) });
      } catch {
        client.close();
        continue;
      }
      const pair: Pair = { client, server, swallow: false, closed: false };
      pairs.add(pair);
      pump(pair, true);
      pump(pair, false);
    }
  })().catch(() => {});

  const port = (listener.addr as Deno.NetAddr).port;
  const proxied = new URL(url);
  proxied.hostname = "127.0.0.1";
  proxied.port = String(port);
  return {
    url: proxied.href,
    get accepted() {
      return accepted;
    },
    swallowAfter(text) {
      return new Promise((resolve) => (armed = { text, resolve }));
    },
    count(text) {
      if (!counts.has(text)) counts.set(text, 0);
      return counts.get(text)!;
    },
    cut() {
      for (const pair of [...pairs]) if (pair.swallow) close(pair);
    },
    freeze() {
      frozen = true;
    },
    thaw() {
      for (const pair of [...pairs]) close(pair);
      frozen = false;
    },
    [Symbol.asyncDispose]() {
      listener.close();
      for (const pair of [...pairs]) close(pair);
      return Promise.resolve();
    },
  };
}
