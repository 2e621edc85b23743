/**
 * Helpers for tests that need a Redis server: the shared one named by
 * TASKPOOL_REDIS_URL, or a private redis-server started from PATH.
 *
 * @module
 */

/** The URL of the shared test server: TASKPOOL_REDIS_URL, or undefined. */
export const REDIS_URL: string | undefined = Deno.env.get("TASKPOOL_REDIS_URL") || undefined;

/** Why a Redis test is skipped (`deno task test` says it once, at the end: tests/_skipped.ts). */
export const SKIPPED =
  "redis tests skipped: set TASKPOOL_REDIS_URL=redis://127.0.0.1:PORT/DB (bash .ci/run starts a server and sets it)";

/**
 * Registers a test against the shared server. Without TASKPOOL_REDIS_URL it is
 * ignored (`deno task test` says so once, after every test has run), except under CI=true, where it fails:
 * CI must never skip these silently.
 *
 * @param name The test's name.
 * @param fn The test, given the server's URL.
 * @param options Sanitizers to turn off.
 */
export function redisTest(
  name: string,
  fn: (url: string) => Promise<void>,
  options: { sanitizeOps?: boolean; sanitizeResources?: boolean } = {},
): void {
  const url = REDIS_URL;
  if (url !== undefined) {
    Deno.test({ name, fn: () => fn(url), ...options });
  } else if (Deno.env.get("CI") === "true") {
    const error = new Error(`CI=true, so this test may not be skipped: ${SKIPPED}`);
    Deno.test({ name, fn: () => Promise.reject(error) });
  } else {
    Deno.test({ name, ignore: true, fn: () => {} });
  }
}

/** Options of {@linkcode startRedisServer}. */
export interface RedisServerOptions {
  /** Sets requirepass; the URL then carries it. */
  password?: string;
  /**
   * Keep the data across {@linkcode RedisServer.restart} (an append-only file, fsync on
   * every write, in a temporary directory that `stop()` removes).
   *
   * @default {false}
   */
  persist?: boolean;
}

/** A private redis-server, from {@linkcode startRedisServer}. */
export interface RedisServer {
  /** Its URL, db 0, with the password if one was set. */
  url: string;
  /** Its loopback port. */
  port: number;
  /** Stops it (SIGTERM, then SIGKILL after 2 s), waits for it to exit, removes its files. */
  stop(): Promise<void>;
  /** Stops it, then starts it again on the same port: empty, unless `persist` was set. */
  restart(): Promise<void>;
  /** `await using` stops it. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Starts a private redis-server (from PATH) on a free loopback port, without
 * persistence unless asked, and waits until it answers PING. For tests that
 * stop, restart or reconfigure a server.
 *
 * @param options A password, persistence.
 * @returns Its URL, port and controls.
 */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  const dir = options.persist ? await Deno.makeTempDir({ prefix: "taskpool-redis-" }) : undefined;
  const config = { password: options.password, dir };
  let port = 0;
  let child: Deno.ChildProcess | undefined;
  for (let attempt = 1; child === undefined; attempt++) {
    port = freePort();
    try {
      child = await spawn(port, config);
    } catch (error) {
      // Someone took the port between our probe and redis-server's bind: try another.
      if (attempt >= 5) {
        if (dir) await Deno.remove(dir, { recursive: true });
        throw error;
      }
    }
  }
  const auth = options.password === undefined ? "" : `:${encodeURIComponent(options.password)}@`;
  const halt = async () => {
    const running = child;
    child = undefined;
    if (running) await kill(running);
  };
  const stop = async () => {
    await halt();
    if (dir) await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  return {
    url: `redis://${auth}127.0.0.1:${port}/0`,
    port,
    stop,
    async restart() {
      await halt();
      if (dir) await Deno.mkdir(dir, { recursive: true });
      child = await spawn(port, config);
    },
    [Symbol.asyncDispose]: stop,
  };
}

/**
 * A fresh key prefix, so that tests sharing one server do not collide.
 *
 * @param prefix What the prefix starts with.
 * @returns E.g. "t:1a2b3c4d".
 */
export function uniqueKey(prefix = "t"): string {
  return `${prefix}:${crypto.randomUUID().slice(0, 8)}`;
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** Starts redis-server on `port` and resolves once it answers PING; rejects if it exits or stays silent. */
async function spawn(
  port: number,
  config: { password?: string; dir?: string },
): Promise<Deno.ChildProcess> {
  const args = ["--port", `${port}`, "--bind", "127.0.0.1", "--save", ""];
  args.push("--daemonize", "no", "--enable-debug-command", "local", "--loglevel", "warning");
  if (config.dir === undefined) args.push("--appendonly", "no");
  else args.push("--appendonly", "yes", "--appendfsync", "always", "--dir", config.dir);
  if (config.password !== undefined) args.push("--requirepass", config.password);
  const child = new Deno.Command("redis-server", {
    args,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  })
    .spawn();
  let exited = false;
  child.status.then(() => {
    exited = true;
  });
  const deadline = Date.now() + 5000;
  while (!exited && Date.now() < deadline) {
    // Sleep first: a server that cannot bind exits within milliseconds, and until it has,
    // a PONG could come from whoever holds the port.
    await new Promise((resolve) => setTimeout(resolve, 20));
    if (await answersPing(port) && !exited) return child;
  }
  await kill(child);
  throw new Error(
    `redis-server on port ${port} ${exited ? "exited at once" : "did not answer PING in 5 s"}`,
  );
}

/** Whether a server on `port` answers PING (NOAUTH counts: it is up, and wants a password). */
async function answersPing(port: number): Promise<boolean> {
  let conn: Deno.Conn | undefined;
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(new TextEncoder().encode("*1\r\n$4\r\nPING\r\n"));
    const buf = new Uint8Array(64);
    const n = await conn.read(buf);
    const reply = new TextDecoder().decode(buf.subarray(0, n ?? 0));
    return reply.startsWith("+PONG") || reply.startsWith("-NOAUTH");
  } catch {
    return false;
  } finally {
    conn?.close();
  }
}

async function kill(child: Deno.ChildProcess): Promise<void> {
  try {
    child.kill("SIGTERM");
  } catch {
    // already exited
  }
  const hard = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // exited meanwhile
    }
  }, 2000);
  await child.status;
  clearTimeout(hard);
}

/** A private Redis Cluster of three masters on free loopback ports, from {@linkcode startRedisCluster}. */
export interface RedisCluster {
  /** The seed URLs of all three nodes, comma-separated (what `--redis` takes). */
  url: string;
  /** Each node's port. */
  ports: number[];
  /** Stops one node (SIGKILL), then starts it again on its port with its data and cluster config. */
  restart(port: number): Promise<void>;
  /** Stops one node (SIGKILL); `restart` brings it back. */
  kill(port: number): Promise<void>;
  /** Starts a fourth node as a replica of the master on `port`, once it has synced; its port. */
  addReplica(port: number): Promise<number>;
  /** Stops every node and removes their files. */
  stop(): Promise<void>;
  /** `await using` stops it. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Starts three redis-servers in cluster mode (each with an append-only
 * file, so that a restarted node keeps its keys), joins them with
 * `redis-cli --cluster create … --cluster-replicas 0`, and waits until every
 * node reports `cluster_state:ok`.
 *
 * @returns The cluster's URL, ports and controls.
 */
export async function startRedisCluster(): Promise<RedisCluster> {
  const dir = await Deno.makeTempDir({ prefix: "taskpool-cluster-" });
  const ports = [freePort(), freePort(), freePort()];
  const children = new Map<number, Deno.ChildProcess>();
  /** SIGKILLs the node on `port` (it stays down until `start`). */
  const killNode = async (port: number) => {
    const child = children.get(port);
    children.delete(port);
    if (child) {
      child.kill("SIGKILL");
      await child.status;
    }
  };
  const start = async (port: number) => {
    const child = new Deno.Command("redis-server", {
      args: [
        "--port",
        `${port}`,
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfilename",
        `append-${port}.aof`,
        "--appenddirname",
        `aof-${port}`,
        "--dir",
        dir,
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        `nodes-${port}.conf`,
        "--cluster-node-timeout",
        "3000",
        "--loglevel",
        "warning",
      ],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    children.set(port, child);
    const deadline = Date.now() + 10_000;
    while (!(await answersPing(port))) {
      if (Date.now() > deadline) throw new Error(`cluster node on port ${port} did not start`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  const stop = async () => {
    await Promise.all([...children.values()].map(kill));
    children.clear();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    await Promise.all(ports.map(start));
    const create = await new Deno.Command("redis-cli", {
      args: [
        "--cluster",
        "create",
        ...ports.map((port) => `127.0.0.1:${port}`),
        "--cluster-replicas",
        "0",
        "--cluster-yes",
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!create.success) {
      throw new Error(
        `redis-cli --cluster create failed: ${new TextDecoder().decode(create.stdout)}`,
      );
    }
    for (const port of ports) await clusterOk(port);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    url: ports.map((port) => `redis://127.0.0.1:${port}`).join(","),
    ports,
    async addReplica(master: number) {
      const port = freePort();
      await start(port);
      const id = await new Deno.Command("redis-cli", {
        args: ["-p", `${master}`, "cluster", "myid"],
        stdout: "piped",
        stderr: "null",
      }).output();
      const add = await new Deno.Command("redis-cli", {
        args: [
          "--cluster",
          "add-node",
          `127.0.0.1:${port}`,
          `127.0.0.1:${master}`,
          "--cluster-slave",
          "--cluster-master-id",
          new TextDecoder().decode(id.stdout).trim(),
        ],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      if (!add.success) throw new Error(`add-node failed: ${new TextDecoder().decode(add.stdout)}`);
      await untilCliSays(port, ["info", "replication"], "master_link_status:up", "synced");
      return port;
    },
    kill: killNode,
    async restart(port: number) {
      await killNode(port);
      await start(port);
      for (const each of ports) await clusterOk(each);
    },
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

/** Waits until the node on `port` says `cluster_state:ok` (gossip has joined it). */
function clusterOk(port: number): Promise<void> {
  return untilCliSays(port, ["cluster", "info"], "cluster_state:ok", "became ok");
}

/** Runs `redis-cli -p port ...args` every 100 ms until it prints `needle` (30 s at most). */
async function untilCliSays(
  port: number,
  args: string[],
  needle: string,
  what: string,
): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const info = await new Deno.Command("redis-cli", {
      args: ["-p", `${port}`, ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).output();
    if (new TextDecoder().decode(info.stdout).includes(needle)) return;
    if (Date.now() > deadline) throw new Error(`Redis node on port ${port} never ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
