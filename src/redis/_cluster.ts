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
  let bytes = typeof key === "string" ? encoder.encode(key) : key;
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
  "DEBUG",
  "MEMORY",
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
  if (name === "KEYS" || name === "SCAN") {
    // A pattern with a hash tag names one slot: the node that serves it.
    const pattern = String(name === "KEYS" ? args[1] : "");
    const tag = hashTagOf(pattern);
    return tag !== undefined && !/[*?[\\]/.test(tag) ? `{${tag}}` : undefined;
  }
  return args[1];
}

/** How to reach one node: its connection, and how to send on it. */
interface Node {
  send(args: readonly RedisArg[], options?: RedisSendOptions): Promise<RedisReply>;
  close(): void;
}

/**
 * Routes commands to the nodes of a Redis Cluster (see the module doc).
 */
export class ClusterRouter {
  readonly #nodes = new Map<string, Promise<Node>>();
  readonly #connect: (address: string) => Promise<RedisClient>;
  /** The address serving each slot, as last read or redirected. */
  #map: Array<string | undefined> = new Array(SLOTS);
  #refreshing: Promise<void> | undefined;
  #closed = false;

  /**
   * @param seed The address of the node already connected, and that connection.
   * @param connect Opens a connection to another node, by `host:port`.
   */
  private constructor(
    seed: [string, Node],
    connect: (address: string) => Promise<RedisClient>,
  ) {
    this.#nodes.set(seed[0], Promise.resolve(seed[1]));
    this.#connect = connect;
  }

  /**
   * Opens a router: reads the slot map through the seed's connection.
   *
   * @param seed The connected node's address and connection.
   * @param connect Opens a connection to another node.
   * @returns The router.
   */
  static async open(
    seed: [string, Node],
    connect: (address: string) => Promise<RedisClient>,
  ): Promise<ClusterRouter> {
    const router = new ClusterRouter(seed, connect);
    await router.#refresh();
    return router;
  }

  /** Sends a command to the node serving its key, following redirections. */
  async send(args: readonly RedisArg[], options: RedisSendOptions = {}): Promise<RedisReply> {
    const key = routingKey(args);
    const slot = key === undefined
      ? undefined
      : slotOf(key instanceof Uint8Array ? key : String(key));
    let address = slot === undefined ? this.#any() : this.#map[slot] ?? this.#any();
    let asking = false;
    let redirects = 0;
    const started = performance.now();
    for (let waits = 0;; waits++) {
      const node = await this.#node(address);
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
        const redirect = /: (MOVED|ASK) (\d+) (\S+)$/.exec(error.message);
        asking = false;
        if (redirect !== null && ++redirects <= MAX_REDIRECTS) {
          address = redirect[3];
          if (redirect[1] === "MOVED") {
            this.#map[Number(redirect[2])] = address;
            this.#refreshSoon();
          } else asking = true;
          continue;
        }
        if (/: (TRYAGAIN|CLUSTERDOWN)\b/.test(error.message)) {
          // A migration or a failover under way: again, within the command's
          // timeout; past it, a connection error, which callers retry.
          const limit = options.timeout ?? 10_000;
          if (limit > 0 && performance.now() - started > limit) {
            throw new RedisConnectionError(
              `${error.message.replace(/^Redis error for /, "")}; for ${Math.round(limit)} ms`,
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

  /** Closes every node's connection. */
  close(): void {
    this.#closed = true;
    for (const node of this.#nodes.values()) node.then((n) => n.close(), () => {});
  }

  /** A node for a command that names no key: the first one known. */
  #any(): string {
    return this.#nodes.keys().next().value!;
  }

  #node(address: string): Promise<Node> {
    let node = this.#nodes.get(address);
    if (node === undefined) {
      if (this.#closed) {
        return Promise.reject(new RedisConnectionError(`the Redis cluster client is closed`));
      }
      node = this.#connect(address);
      this.#nodes.set(address, node);
      // A node that could not be reached is tried afresh next time.
      node.catch(() => this.#nodes.delete(address));
    }
    return node;
  }

  /** Reads the slot map again, in the background, once at a time. */
  #refreshSoon(): void {
    if (this.#refreshing === undefined && !this.#closed) {
      this.#refreshing = this.#refresh().catch(() => {}).finally(() =>
        this.#refreshing = undefined
      );
    }
  }

  /** Reads CLUSTER SLOTS from the first node that answers. */
  async #refresh(): Promise<void> {
    let failure: unknown;
    for (const address of [...this.#nodes.keys()]) {
      try {
        const node = await this.#node(address);
        const ranges = await node.send(["CLUSTER", "SLOTS"]) as RedisReply[][];
        const map: Array<string | undefined> = new Array(SLOTS);
        for (const range of ranges) {
          const [from, to, master] = range as [number, number, RedisReply[]];
          const host = String(master[0]) === "" ? address.replace(/:\d+$/, "") : String(master[0]);
          for (let slot = Number(from); slot <= Number(to); slot++) {
            map[slot] = `${host}:${master[1]}`;
          }
        }
        this.#map = map;
        return;
      } catch (error) {
        failure = error;
      }
    }
    throw failure;
  }
}
