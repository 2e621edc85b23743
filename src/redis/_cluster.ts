/**
 * Redis Cluster: which of the 16,384 hash slots a key is in, which node
 * serves each slot, and the routing of a command there, following the
 * cluster's redirections. {@linkcode RedisClient} uses a
 * {@linkcode ClusterRouter} when the server it connects to says it is part
 * of a cluster; every other file speaks to the client as to one server.
 *
 * - **Slots.** A key's slot is the CRC16 (XMODEM) of the key, modulo 16384;
 *   when the key holds a non-empty `{…}`, of the first such part only (a
 *   hash tag): `{jobs}:results` and `{jobs}` share a slot. A queue whose
 *   name has a hash tag keeps all its keys in one slot, so every script runs
 *   on one node (`RedisQueue.connect` refuses a name without one on a
 *   cluster).
 * - **The map.** `CLUSTER SLOTS`, read from any node when the router opens,
 *   after a `MOVED`, and after a node's connection fails.
 * - **Redirections.** `MOVED slot host:port`: the slot lives there now; the
 *   map is updated and the command sent there. `ASK slot host:port`: the slot
 *   is migrating and this key is already there; the command is sent there
 *   once, after `ASKING`, on the same connection. `TRYAGAIN` (a multi-key
 *   command whose keys are split by a migration) and `CLUSTERDOWN` are sent
 *   again after a short wait. At most {@linkcode MAX_REDIRECTS} in a row.
 * - **Failures.** Each node has a connection of its own, which reconnects and
 *   times out as a single server's does; a command whose node fails rejects
 *   with `RedisConnectionError` (callers retry as they do on one server),
 *   and the map is read again.
 *
 * @module
 */

import { RedisConnectionError, RedisError } from "../errors.ts";
import type { RedisArg, RedisClient, RedisReply, RedisSendOptions } from "./client.ts";

/** Redirections (MOVED, ASK, TRYAGAIN) followed for one command before it fails. */
export const MAX_REDIRECTS = 16;
const SLOTS = 16384;
const RETRY_WAIT_MS = 25;

const TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1;
    table[i] = crc & 0xffff;
  }
  return table;
})();

const encoder = new TextEncoder();

/**
 * The hash slot of a key, as Redis Cluster computes it.
 *
 * @param key The key.
 * @returns 0 to 16383.
 *
 * @example A hash tag decides the slot
 * ```ts
 * import { slotOf } from "./_cluster.ts";
 * import assert from "node:assert";
 *
 * assert.strictEqual(slotOf("foo"), 12182); // as CLUSTER KEYSLOT foo says
 * assert.strictEqual(slotOf("{jobs}:results"), slotOf("{jobs}"));
 * ```
 */
export function slotOf(key: string | Uint8Array): number {
  if (typeof key === "string") {
    // A queue's commands name the same few keys again and again.
    let slot = slots.get(key);
    if (slot === undefined) {
      if (slots.size >= SLOT_CACHE) slots.clear();
      slot = slotOfBytes(encoder.encode(key));
      slots.set(key, slot);
    }
    return slot;
  }
  return slotOfBytes(key);
}

/** The slots of the keys seen lately (cleared when full). */
const slots = new Map<string, number>();
const SLOT_CACHE = 4096;

function slotOfBytes(key: Uint8Array): number {
  let bytes = key;
  const open = bytes.indexOf(0x7b); // {
  if (open >= 0) {
    const close = bytes.indexOf(0x7d, open + 1); // }
    if (close > open + 1) bytes = bytes.subarray(open + 1, close);
  }
  let crc = 0;
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ byte) & 0xff];
  return crc % SLOTS;
}

/**
 * The hash tag of a name: its first non-empty `{…}` part, or `undefined`.
 *
 * @param name A key or queue name.
 * @returns The tag, without braces.
 *
 * @example
 * ```ts
 * import { hashTagOf } from "./_cluster.ts";
 * import assert from "node:assert";
 *
 * assert.strictEqual(hashTagOf("{jobs}"), "jobs");
 * assert.strictEqual(hashTagOf("jobs"), undefined);
 * assert.strictEqual(hashTagOf("{}jobs"), undefined);
 * ```
 */
export function hashTagOf(name: string): string | undefined {
  const open = name.indexOf("{");
  if (open < 0) return undefined;
  const close = name.indexOf("}", open + 1);
  return close > open + 1 ? name.slice(open + 1, close) : undefined;
}

/** Commands that name no key: sent to any node. */
const KEYLESS = new Set([
  "PING",
  "HELLO",
  "INFO",
  "CLIENT",
  "TIME",
  "SCRIPT",
  "CLUSTER",
  "ASKING",
  "AUTH",
  "ECHO",
  "CONFIG",
  "COMMAND",
  "DBSIZE",
  "FLUSHDB",
  "FLUSHALL",
]);

/** DEBUG subcommands whose first argument is a key (Redis 7.0's `DEBUG HELP`; ZIPLIST from 6). */
const DEBUG_KEYED = new Set([
  "OBJECT",
  "DIGEST-VALUE",
  "HTSTATS-KEY",
  "SDSLEN",
  "LISTPACK",
  "QUICKLIST",
  "ZIPLIST",
]);

/**
 * The key that decides where a command goes, or `undefined` for a command
 * that names none (sent to any node).
 *
 * @param args The command.
 * @returns The key.
 */
export function routingKey(args: readonly RedisArg[]): RedisArg | undefined {
  const name = String(args[0]).toUpperCase();
  if (KEYLESS.has(name)) return undefined;
  if (name === "EVAL" || name === "EVALSHA" || name === "EVAL_RO" || name === "EVALSHA_RO") {
    return Number(args[2]) > 0 ? args[3] : undefined;
  }
  if (name === "XREAD" || name === "XREADGROUP") {
    const at = args.findIndex((arg) => String(arg).toUpperCase() === "STREAMS");
    return at >= 0 ? args[at + 1] : undefined;
  }
  if (name === "XINFO" || name === "OBJECT") return args[2];
  // MEMORY USAGE and DEBUG's key subcommands name a key after the
  // subcommand (DIGEST-VALUE may name more: the first decides, as Redis
  // checks no slot for DEBUG). Other subcommands name none (MEMORY STATS,
  // DEBUG SLEEP; MALLCTL's "key" is an allocator setting): any node.
  if (name === "MEMORY") return String(args[1]).toUpperCase() === "USAGE" ? args[2] : undefined;
  if (name === "DEBUG") return DEBUG_KEYED.has(String(args[1]).toUpperCase()) ? args[2] : undefined;
  if (name === "MIGRATE") return migrateKey(args);
  if (name === "KEYS" || name === "SCAN") {
    // A pattern with a hash tag names one slot: the node that serves it.
    const pattern = String(name === "KEYS" ? args[1] : "");
    const tag = hashTagOf(pattern);
    return tag !== undefined && !/[*?[\\]/.test(tag) ? `{${tag}}` : undefined;
  }
  return args[1];
}

/**
 * The first key of `MIGRATE host port key|"" db timeout [COPY] [REPLACE]
 * [AUTH password | AUTH2 username password] [KEYS key ...]`: its third
 * argument, or when that is empty the first after KEYS (a password or user
 * name that reads "KEYS" is skipped as such).
 */
function migrateKey(args: readonly RedisArg[]): RedisArg | undefined {
  if (String(args[3] ?? "") !== "") return args[3];
  for (let i = 6; i < args.length; i++) {
    const option = String(args[i]).toUpperCase();
    if (option === "AUTH") i += 1;
    else if (option === "AUTH2") i += 2;
    else if (option === "KEYS") return args[i + 1];
  }
  return undefined;
}

/** How to reach one node: its connection, and how to send on it. */
interface Node {
  send(args: readonly RedisArg[], options?: RedisSendOptions): Promise<RedisReply>;
  close(): void;
  readonly connected: boolean;
}

/** How long a refresh of the map waits for one node before it asks another, ms. */
const REFRESH_TIMEOUT_MS = 2000;

/** The host of an endpoint as the cluster reports it; "" when it names none (null, "", "?"). */
function hostOf(reported: RedisReply): string {
  const host = reported === null ? "" : String(reported);
  return host === "?" ? "" : host;
}

/**
 * Routes commands to the nodes of a Redis Cluster (see the module doc).
 */
export class ClusterRouter {
  readonly #nodes = new Map<string, Promise<Node>>();
  /** The nodes connected at least once, by address. */
  readonly #reached = new Map<string, Node>();
  readonly #connect: (address: string) => Promise<RedisClient>;
  /** The addresses the client was given, asked again when no node it knows answers. */
  readonly #seeds: string[];
  /** The address serving each slot, as last read or redirected. */
  #map: Array<string | undefined> = new Array(SLOTS);
  #refreshing: Promise<void> | undefined;
  #closed = false;
  /** Rejects when the router closes: ends every wait for a node's connection. */
  readonly #closing: Promise<never>;
  #close!: (error: Error) => void;

  private constructor(
    seed: [string, Node],
    seeds: string[],
    connect: (address: string) => Promise<RedisClient>,
  ) {
    this.#nodes.set(seed[0], Promise.resolve(seed[1]));
    this.#reached.set(seed[0], seed[1]);
    this.#seeds = seeds;
    this.#connect = connect;
    this.#closing = new Promise<never>((_, reject) => this.#close = reject);
    this.#closing.catch(() => {});
  }

  /**
   * Opens a router: reads the slot map through the seed's connection.
   *
   * @param seed The connected node's address and connection.
   * @param seeds Every address the client was given (`host:port`).
   * @param connect Opens a connection to another node.
   * @returns The router.
   */
  static async open(
    seed: [string, Node],
    seeds: string[],
    connect: (address: string) => Promise<RedisClient>,
  ): Promise<ClusterRouter> {
    const router = new ClusterRouter(seed, seeds, connect);
    await router.#refresh();
    return router;
  }

  /** Whether every node connected so far, and not since forgotten (`#prune`), has its connection up. */
  get connected(): boolean {
    for (const node of this.#reached.values()) if (!node.connected) return false;
    return !this.#closed;
  }

  /**
   * Sends a command to the node serving its key (or `options.route`'s),
   * following redirections.
   */
  async send(
    args: readonly RedisArg[],
    options: RedisSendOptions & { route?: RedisArg } = {},
  ): Promise<RedisReply> {
    const key = options.route ?? routingKey(args);
    const slot = key === undefined
      ? undefined
      : slotOf(key instanceof Uint8Array ? key : String(key));
    let address = slot === undefined ? this.#any() : this.#map[slot] ?? this.#any();
    let asking = false;
    let redirects = 0;
    const started = performance.now();
    const limit = options.timeout ?? 10_000;
    for (let waits = 0;; waits++) {
      let node: Node;
      try {
        // Within the command's timeout, and the router's life.
        node = await this.#reach(address, limit - (performance.now() - started));
        if (!node.connected && slot !== undefined && !this.#closed) {
          // Its node is down: a failover may have moved the slot. Read the
          // map first (the command would wait out its timeout there).
          this.#refreshSoon();
          await this.#refreshing;
          const now = this.#map[slot];
          if (now !== undefined && now !== address) {
            address = now;
            node = await this.#reach(address, limit - (performance.now() - started));
          }
        }
      } catch (error) {
        this.#refreshSoon();
        throw error;
      }
      try {
        if (!asking) return await node.send(args, options);
        // ASKING and the command on one connection, one after the other.
        const ask = node.send(["ASKING"], options);
        const reply = node.send(args, options);
        await ask.catch(() => {});
        return await reply;
      } catch (error) {
        if (error instanceof RedisConnectionError) {
          this.#refreshSoon();
          throw error;
        }
        if (!(error instanceof RedisError)) throw error;
        const redirect = /: (MOVED|ASK) (\d+) (\S*):(\d+)$/.exec(error.message);
        asking = false;
        if (redirect !== null && ++redirects <= MAX_REDIRECTS) {
          // An endpoint without a host: the host of the node that answered.
          const host = hostOf(redirect[3]) || address.slice(0, address.lastIndexOf(":"));
          address = `${host}:${redirect[4]}`;
          if (redirect[1] === "MOVED") {
            this.#map[Number(redirect[2])] = address;
            this.#refreshSoon();
          } else asking = true;
          continue;
        }
        if (/: (TRYAGAIN|CLUSTERDOWN)\b/.test(error.message) && !this.#closed) {
          // A migration or a failover under way: again, within the command's
          // timeout; past it, a connection error, which callers retry.
          if (limit > 0 && performance.now() - started > limit) {
            throw new RedisConnectionError(
              `the Redis cluster kept answering ${
                error.message.replace(/^Redis error for /, "")
              } for ${Math.round(limit)} ms (a slot migrating, or a node down)`,
              { cause: error },
            );
          }
          await new Promise((resolve) =>
            setTimeout(resolve, Math.min(500, RETRY_WAIT_MS * 2 ** Math.min(waits, 5)))
          );
          if (slot !== undefined) address = this.#map[slot] ?? address;
          this.#refreshSoon();
          continue;
        }
        throw error;
      }
    }
  }

  /** Closes every node's connection, and ends every wait for one. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#close(new RedisConnectionError("the Redis cluster client was closed"));
    for (const node of this.#nodes.values()) node.then((n) => n.close(), () => {});
  }

  /** A node for a command that names no key: one whose connection is up, else the first known. */
  #any(): string {
    for (const [address, node] of this.#reached) if (node.connected) return address;
    return this.#nodes.keys().next().value!;
  }

  /** The node at `address`, connected, within `ms` (0 or less: no limit) and the router's life. */
  #reach(address: string, ms: number): Promise<Node> {
    const node = this.#node(address);
    const waits: Promise<Node>[] = [node, this.#closing];
    let timer: ReturnType<typeof setTimeout> | undefined;
    if (Number.isFinite(ms) && ms > 0 && !this.#reached.has(address)) {
      waits.push(
        new Promise<never>((_, reject) =>
          timer = setTimeout(
            () =>
              reject(
                new RedisConnectionError(
                  `cannot connect to the Redis cluster node ${address} within ${Math.round(ms)} ms`,
                ),
              ),
            ms,
          )
        ),
      );
    }
    return Promise.race(waits).finally(() => clearTimeout(timer));
  }

  #node(address: string): Promise<Node> {
    let node = this.#nodes.get(address);
    if (node === undefined) {
      if (this.#closed) {
        return Promise.reject(new RedisConnectionError(`the Redis cluster client is closed`));
      }
      const opening = this.#connect(address).then((client) => {
        // Closed while it connected: not kept.
        if (this.#closed) client.close();
        else this.#reached.set(address, client);
        return client;
      });
      node = opening;
      this.#nodes.set(address, node);
      // A node that could not be reached is tried afresh next time.
      node.catch(() => {
        if (this.#nodes.get(address) === opening) this.#nodes.delete(address);
      });
    }
    return node;
  }

  /**
   * Forgets the nodes that serve no slot in the map just read and whose
   * connection is down: a master that failed and was replaced. Kept, it
   * would count against `connected` for good (the client would say it is
   * down while every slot is served) and reconnect to a dead address
   * forever. A command still waiting on it fails with a connection error
   * (callers retry); if the node comes back, a redirection or the map finds
   * it again.
   */
  #prune(serving: Set<string | undefined>): void {
    for (const [address, node] of this.#reached) {
      if (node.connected || serving.has(address)) continue;
      this.#reached.delete(address);
      this.#nodes.delete(address);
      node.close();
    }
  }

  /** Reads the slot map again, in the background, once at a time. */
  #refreshSoon(): void {
    if (this.#refreshing === undefined && !this.#closed) {
      this.#refreshing = this.#refresh().catch(() => {}).finally(() =>
        this.#refreshing = undefined
      );
    }
  }

  /**
   * Reads CLUSTER SLOTS from the first node that answers: those connected,
   * then every address in the map, then the seeds (a failover's new master
   * may be known only from the map or a seed).
   */
  async #refresh(): Promise<void> {
    const up = [...this.#reached].filter(([, node]) => node.connected).map(([address]) => address);
    const candidates = new Set([
      ...up,
      ...this.#map.filter((a) => a !== undefined),
      ...this.#seeds,
    ]);
    let failure: unknown = new RedisConnectionError("no node of the Redis cluster answered");
    for (const address of candidates) {
      if (this.#closed) return;
      try {
        const node = await this.#reach(address!, REFRESH_TIMEOUT_MS);
        const ranges = await node.send(["CLUSTER", "SLOTS"], {
          timeout: REFRESH_TIMEOUT_MS,
        }) as RedisReply[][];
        const map: Array<string | undefined> = new Array(SLOTS);
        const own = address!.slice(0, address!.lastIndexOf(":"));
        for (const range of ranges) {
          const [from, to, master] = range as [number, number, RedisReply[]];
          const host = hostOf(master[0]) || own;
          for (let slot = Number(from); slot <= Number(to); slot++) {
            map[slot] = `${host}:${master[1]}`;
          }
        }
        this.#map = map;
        this.#prune(new Set(map));
        return;
      } catch (error) {
        failure = error;
      }
    }
    throw failure;
  }
}
