/**
 * A small Redis client: RESP2 over TCP or TLS, with pipelining, per-command
 * timeouts and reconnection in the background.
 *
 * @module
 */

import { RedisConnectionError, RedisError } from "../errors.ts";
import { backoff, checkMs, type MsRule } from "../_util.ts";
import { INCOMPLETE, RespErrorReply, RespParser, type RespValue, RespWriter } from "./_resp.ts";
import { parseRedisUrl, type RedisUrl } from "./_url.ts";
import { ClusterRouter } from "./_cluster.ts";

/**
 * A decoded reply: simple and bulk strings, integers, nil, and (nested)
 * arrays. A bulk string that is not valid UTF-8 comes as its bytes (a
 * `Uint8Array`), so that it can be sent back as it is.
 */
export type RedisReply = string | Uint8Array | number | null | RedisReply[];

/** One word of a command: strings are sent as UTF-8, numbers in decimal, bytes as they are. */
export type RedisArg = string | number | Uint8Array;

/** Options of {@linkcode RedisClient.connect}. */
export interface RedisClientOptions {
  /**
   * Milliseconds a connection attempt (TCP, TLS, AUTH, SELECT) may take; 0 for no limit.
   *
   * @default {5000}
   */
  connectTimeout?: number;
  /**
   * Milliseconds a command may wait for its reply, unless its own `timeout` says otherwise;
   * 0 for no limit.
   *
   * @default {10000}
   */
  commandTimeout?: number;
  /**
   * Reconnect in the background, with backoff, after the connection drops.
   *
   * @default {true}
   */
  reconnect?: boolean;
  /**
   * The longest wait between reconnection attempts, in ms. Waits start at 50 ms and
   * double, with jitter.
   *
   * @default {2000}
   */
  maxReconnectDelay?: number;
  /** A name set with CLIENT SETNAME on each connection (printable ASCII, no spaces). */
  name?: string;
  /**
   * Whether to ask the server if it is part of a Redis Cluster (`INFO
   * cluster`, with the connection's first commands) and, if so, route each
   * command to the node serving its key (`_cluster.ts`).
   *
   * @default {true}
   */
  cluster?: boolean;
}

/** Options of {@linkcode RedisClient.send}. */
export interface RedisSendOptions {
  /**
   * Milliseconds to wait for the reply; 0 for no limit. A blocking command (BLMOVE,
   * XREAD BLOCK) needs its block time plus a margin.
   *
   * @default {the client's commandTimeout}
   */
  timeout?: number;
  /**
   * On a Redis Cluster: the key whose node gets the command, for one that
   * names no key of its own (`CLIENT ID`, `CLIENT UNBLOCK`, `TIME`) but must
   * reach a given node. Ignored on a single server.
   */
  route?: RedisArg;
}

/** A command from send() until it settles. */
interface Pending {
  args: readonly RedisArg[];
  command: string;
  state: "waiting" | "sent" | "done";
  timer?: ReturnType<typeof setTimeout>;
  resolve(reply: RedisReply): void;
  reject(error: Error): void;
}

/** One live connection and the commands written to it, oldest first. */
interface Link {
  conn: Deno.Conn;
  parser: RespParser;
  writer: RespWriter;
  sent: (Pending | undefined)[];
  head: number;
  writing: boolean;
  flushQueued: boolean;
}

/** Encoded bytes past which a tick's commands are written at once rather than at its end. */
const FLUSH_AT = 1024 * 1024;
const FIRST_RECONNECT_DELAY = 50;
/**
 * Every timeout and delay: at most setTimeout's limit (2^31 - 1 ms), past
 * which it would fire at once. One object, as `send()` checks with it each time.
 */
const MS: MsRule = {};
const POSITIVE_MS: MsRule = { ...MS, positive: true };
/** What to check when no server answers (the CLI puts its --redis flag in its place). */
const CHECK_URL = "(check the Redis URL)";

/**
 * A connection to one Redis server, speaking RESP2.
 *
 * Guarantees: replies are matched to commands in the order they were sent;
 * commands sent in the same tick leave in one write (pipelining); every
 * command settles, at the latest when its timeout expires, so a dead server
 * never hangs a caller. When the connection drops, the commands awaiting a
 * reply reject with {@linkcode RedisConnectionError}: they may or may not
 * have run, and are not resent. Commands sent while reconnecting wait for
 * the new connection. Not promised: that a command sent before a drop ran,
 * or ran once. Not for commands that push replies unasked (SUBSCRIBE, MONITOR).
 *
 * @example Connect, send, close
 * ```ts
 * import { RedisClient } from "@taskpool/taskpool";
 * import assert from "node:assert";
 *
 * const url = Deno.env.get("TASKPOOL_REDIS_URL"); // runs where a server is set
 * if (url) {
 *   await using redis = await RedisClient.connect(url, { commandTimeout: 2000 });
 *   assert.strictEqual(await redis.send(["PING"]), "PONG");
 * }
 * ```
 */
export class RedisClient {
  readonly #url: RedisUrl;
  readonly #options: Required<Omit<RedisClientOptions, "name" | "cluster">> & { name?: string };
  readonly #where: string;
  #link: Link | undefined;
  /** Commands sent while no connection was up, in order. */
  #waiting: Pending[] = [];
  #closed = false;
  /** Why the last connection dropped or the last attempt failed, for waiting commands. */
  #lastError: string | undefined;
  /** With reconnect off, the drop that fails every later command. */
  #dead: string | undefined;
  /** Ends the backoff sleep, or the connection attempt, in progress. */
  #cancel: (() => void) | undefined;
  /** On a cluster: routes every command (this connection is one node's). */
  #router: ClusterRouter | undefined;

  private constructor(url: RedisUrl, options: RedisClientOptions) {
    this.#url = url;
    this.#options = {
      connectTimeout: options.connectTimeout ?? 5000,
      commandTimeout: options.commandTimeout ?? 10000,
      reconnect: options.reconnect ?? true,
      maxReconnectDelay: options.maxReconnectDelay ?? 2000,
      name: options.name,
    };
    this.#where = url.hostname.includes(":")
      ? `[${url.hostname}]:${url.port}`
      : `${url.hostname}:${url.port}`;
  }

  /**
   * Connects (TCP or TLS), then AUTH, SELECT and CLIENT SETNAME as the URL and
   * options ask. Makes one attempt; reconnection applies only to later drops.
   *
   * A server that is a node of a Redis Cluster (it says so with the first
   * commands) makes a client that routes each command to the node serving
   * its key, with a connection per node, following MOVED and ASK
   * (`_cluster.ts`); the URL may then list several seed nodes, separated by
   * commas, tried in turn (`redis://10.0.0.5:7000,redis://10.0.0.6:7000`).
   *
   * @param url A `redis://` or `rediss://` URL (or several, comma-separated), or its parsed form.
   * @param options Timeouts, reconnection and a client name.
   * @returns A connected client.
   * @throws {TypeError} When the URL is malformed or the name has spaces.
   * @throws {RangeError} When a timeout or delay is not a valid number of ms.
   * @throws {RedisConnectionError} When the server is unreachable, does not answer in time,
   * refuses the password, needs one, or has no such database.
   *
   * @example A server that is not running
   * ```ts
   * import { RedisClient, RedisConnectionError } from "@taskpool/taskpool";
   * import assert from "node:assert";
   *
   * await assert.rejects(
   *   RedisClient.connect("redis://127.0.0.1:1/0", { connectTimeout: 1000 }),
   *   (error) => error instanceof RedisConnectionError && /127.0.0.1:1: connection refused/.test(error.message),
   * );
   * ```
   */
  static async connect(
    url: string | RedisUrl,
    options: RedisClientOptions = {},
  ): Promise<RedisClient> {
    // Several seed nodes of a cluster: `redis://a:7000,redis://b:7001`.
    // Split only before a scheme: a password may hold a comma.
    const seeds = typeof url === "string"
      ? url.split(/,\s*(?=rediss?:\/\/)/i).map((one) => parseRedisUrl(one.trim()))
      : [url];
    const failures: RedisConnectionError[] = [];
    for (const seed of seeds) {
      try {
        return await RedisClient.#connectTo(seed, seeds, options);
      } catch (error) {
        if (!(error instanceof RedisConnectionError)) throw error;
        failures.push(error);
      }
    }
    if (failures.length === 1) throw failures[0];
    throw new RedisConnectionError(
      `none of the ${failures.length} Redis nodes answered: ${
        failures.map((f) => f.message).join("; ")
      }`,
      { cause: failures[0] },
    );
  }

  static async #connectTo(
    parsed: RedisUrl,
    seeds: RedisUrl[],
    options: RedisClientOptions,
  ): Promise<RedisClient> {
    for (const key of ["connectTimeout", "commandTimeout", "maxReconnectDelay"] as const) {
      if (options[key] === undefined) continue;
      checkMs(
        options[key],
        "create Redis client",
        key,
        key === "maxReconnectDelay" ? POSITIVE_MS : MS,
      );
    }
    if (options.name !== undefined && !/^[!-~]+$/.test(options.name)) {
      throw new TypeError(
        `Cannot create Redis client as 'name' must be printable ASCII without spaces: current value is "${options.name}"`,
      );
    }
    const client = new RedisClient(parsed, options);
    const [conn, parser] = await client.#open();
    client.#attach(conn, parser);
    if (options.cluster === false) return client;
    try {
      // A server that refuses INFO (an ACL, a renamed command) is taken for one server.
      const info = await client.#direct(["INFO", "cluster"], {}).catch((error) => {
        if (error instanceof RedisError) return "";
        throw error;
      });
      if (!/^cluster_enabled:1/m.test(String(info))) return client;
      const seed = {
        send: client.#direct.bind(client),
        close: () => {},
        get connected() {
          return client.#link !== undefined;
        },
      };
      const address = (url: RedisUrl) => `${url.hostname}:${url.port}`;
      client.#router = await ClusterRouter.open(
        [address(parsed), seed],
        seeds.map(address),
        (address) => {
          const cut = address.lastIndexOf(":");
          const hostname = address.slice(0, cut).replace(/^\[(.*)\]$/, "$1");
          const node = { ...parsed, hostname, port: Number(address.slice(cut + 1)) };
          return RedisClient.connect(node, { ...options, cluster: false });
        },
      );
    } catch (error) {
      client.close();
      throw error;
    }
    return client;
  }

  /**
   * Whether the server is part of a Redis Cluster, whose nodes this client
   * routes commands to.
   *
   * @example A single server is no cluster
   * ```ts
   * import { RedisClient } from "@taskpool/taskpool";
   * import assert from "node:assert";
   *
   * const url = Deno.env.get("TASKPOOL_REDIS_URL"); // runs where a server is set
   * if (url) {
   *   await using redis = await RedisClient.connect(url);
   *   assert.strictEqual(redis.cluster, false);
   * }
   * ```
   */
  get cluster(): boolean {
    return this.#router !== undefined;
  }

  /**
   * Whether a connection is up now: false while reconnecting and after {@linkcode close}.
   *
   * @example Closed clients are not connected
   * ```ts
   * import { RedisClient } from "@taskpool/taskpool";
   * import assert from "node:assert";
   *
   * const url = Deno.env.get("TASKPOOL_REDIS_URL"); // runs where a server is set
   * if (url) {
   *   const redis = await RedisClient.connect(url);
   *   assert(redis.connected);
   *   redis.close();
   *   assert(!redis.connected);
   * }
   * ```
   */
  get connected(): boolean {
    if (this.#router !== undefined) return this.#router.connected;
    return this.#link !== undefined;
  }

  /**
   * Sends one command. Commands sent in the same tick are written together;
   * replies come back in order.
   *
   * @param args The command and its arguments, e.g. `["LPUSH", "jobs", payload]`.
   * @param options A timeout for this command.
   * @returns The reply.
   * @throws {RedisError} When the server answers with an error (also one inside an array reply).
   * @throws {RedisConnectionError} When the reply does not come within the timeout (the
   * connection is then reset), the connection drops first, or the client is closed.
   * @throws {TypeError} When `args` is empty.
   * @throws {RangeError} When the timeout is not a valid number of ms.
   *
   * @example Pipeline a few commands
   * ```ts
   * import { RedisClient } from "@taskpool/taskpool";
   * import assert from "node:assert";
   *
   * const url = Deno.env.get("TASKPOOL_REDIS_URL"); // runs where a server is set
   * if (url) {
   *   await using redis = await RedisClient.connect(url);
   *   const key = `doc:${crypto.randomUUID()}`;
   *   const replies = await Promise.all([
   *     redis.send(["RPUSH", key, "a", "b"]),
   *     redis.send(["LRANGE", key, 0, -1]),
   *     redis.send(["BLPOP", `${key}:none`, 0.1], { timeout: 3000 }),
   *     redis.send(["DEL", key]),
   *   ]);
   *   assert.deepStrictEqual(replies, [2, ["a", "b"], null, 1]);
   * }
   * ```
   */
  send(args: readonly RedisArg[], options: RedisSendOptions = {}): Promise<RedisReply> {
    if (!Array.isArray(args) || args.length === 0) {
      return Promise.reject(new TypeError("Cannot send a Redis command as 'args' is empty"));
    }
    const timeout = options.timeout ?? this.#options.commandTimeout;
    try {
      checkMs(timeout, "send a Redis command", "timeout", MS);
    } catch (error) {
      return Promise.reject(error); // send() never throws: every failure is a rejection
    }
    if (this.#router !== undefined) {
      return this.#router.send(args, { timeout, route: options.route });
    }
    return this.#direct(args, { timeout });
  }

  /** Sends on this connection (checked already): the whole of `send` for one server. */
  #direct(args: readonly RedisArg[], options: RedisSendOptions = {}): Promise<RedisReply> {
    const timeout = options.timeout ?? this.#options.commandTimeout;
    const first = args[0];
    const command = (first instanceof Uint8Array ? new TextDecoder().decode(first) : String(first))
      .toUpperCase();
    if (this.#closed) {
      return Promise.reject(
        new RedisConnectionError(
          `cannot send ${command}: the Redis client for ${this.#where} is closed`,
        ),
      );
    }
    if (this.#dead !== undefined) {
      return Promise.reject(new RedisConnectionError(`cannot send ${command}: ${this.#dead}`));
    }
    return new Promise((resolve, reject) => {
      const pending: Pending = { args, command, state: "waiting", resolve, reject };
      if (timeout > 0) pending.timer = setTimeout(() => this.#expire(pending, timeout), timeout);
      if (this.#link) this.#write(this.#link, pending);
      else this.#waiting.push(pending);
    });
  }

  /**
   * Closes the connection and stops reconnecting. Commands awaiting a reply,
   * and any sent later, reject with {@linkcode RedisConnectionError}. Idempotent.
   *
   * @example A pending command is rejected
   * ```ts
   * import { RedisClient, RedisConnectionError } from "@taskpool/taskpool";
   * import assert from "node:assert";
   *
   * const url = Deno.env.get("TASKPOOL_REDIS_URL"); // runs where a server is set
   * if (url) {
   *   const redis = await RedisClient.connect(url);
   *   const waiting = redis.send(["BLPOP", `doc:${crypto.randomUUID()}`, 5], { timeout: 0 });
   *   redis.close();
   *   redis.close();
   *   await assert.rejects(waiting, RedisConnectionError);
   * }
   * ```
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#router?.close();
    this.#cancel?.();
    if (this.#link) this.#drop(this.#link, "the client was closed");
    for (const pending of this.#waiting.splice(0)) {
      this.#settle(
        pending,
        new RedisConnectionError(
          `connection to Redis at ${this.#where} was closed before ${pending.command} was sent`,
        ),
      );
    }
  }

  /** Calls {@linkcode close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Calls {@linkcode close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }

  /** Opens a connection and says hello (AUTH, SELECT, SETNAME, PING), all within connectTimeout. */
  async #open(): Promise<[Deno.Conn, RespParser]> {
    const { hostname, port, tls } = this.#url;
    const abort = new AbortController();
    let conn: Deno.Conn | undefined;
    let timedOut = false;
    const cancel = () => {
      abort.abort();
      try {
        conn?.close();
      } catch {
        // already closed
      }
    };
    this.#cancel = cancel;
    const limit = this.#options.connectTimeout;
    const timer = limit > 0
      ? setTimeout(() => {
        timedOut = true;
        cancel();
      }, limit)
      : undefined;
    try {
      const tcp = await Deno.connect({ hostname, port, signal: abort.signal });
      conn = tcp;
      tcp.setNoDelay(true);
      // A peer gone without a FIN is noticed in the end (OS keepalive timing), even mid-BLPOP.
      tcp.setKeepAlive(true);
      if (tls) conn = await Deno.startTls(tcp, { hostname });
      if (abort.signal.aborted) throw new Error("cancelled");
      const parser = new RespParser();
      await this.#hello(conn, parser);
      return [conn, parser];
    } catch (error) {
      cancel();
      if (this.#closed) {
        throw new RedisConnectionError(`the Redis client for ${this.#where} is closed`);
      }
      throw this.#connectError(error, timedOut);
    } finally {
      clearTimeout(timer);
      if (this.#cancel === cancel) this.#cancel = undefined;
    }
  }

  async #hello(conn: Deno.Conn, parser: RespParser): Promise<void> {
    const { username, password, db } = this.#url;
    const commands: RedisArg[][] = [];
    if (password !== undefined) {
      commands.push(username === undefined ? ["AUTH", password] : ["AUTH", username, password]);
    }
    if (db !== 0) commands.push(["SELECT", db]);
    if (this.#options.name !== undefined) commands.push(["CLIENT", "SETNAME", this.#options.name]);
    // PING last: it reports NOAUTH when the server wants a password we lack.
    commands.push(["PING"]);
    const writer = new RespWriter();
    for (const command of commands) writer.write(command);
    await writeAll(conn, writer.take());
    for (const command of commands) {
      let reply = parser.next();
      while (reply === INCOMPLETE) {
        const n = await conn.read(parser.space());
        if (n === null) throw new Error("the server closed the connection");
        parser.commit(n);
        reply = parser.next();
      }
      if (reply instanceof RespErrorReply) throw new RedisError(String(command[0]), reply.message);
    }
  }

  #connectError(error: unknown, timedOut: boolean): RedisConnectionError {
    const { db, tls } = this.#url;
    const prefix = `cannot connect to Redis at ${this.#where}${tls ? " over TLS" : ""}`;
    const message = oneLine(error);
    let why: string;
    if (timedOut) {
      const speaks = tls ? " and does it speak TLS" : "";
      why =
        `no answer within ${this.#options.connectTimeout} ms; is the host right${speaks}? ${CHECK_URL}`;
    } else if (error instanceof Deno.errors.ConnectionRefused) {
      why = `connection refused; is redis-server running? ${CHECK_URL}`;
    } else if (error instanceof RedisError && /: NOAUTH\b/.test(message)) {
      why =
        `the server needs a password: put it in the URL, e.g. redis://:PASSWORD@${this.#where}/${db}`;
    } else if (error instanceof RedisError && /without any password configured/.test(message)) {
      why = "authentication failed: the URL has a password but the server needs none";
    } else if (error instanceof RedisError && error.command === "AUTH") {
      why = "authentication failed: wrong user or password in the URL";
    } else if (
      error instanceof RedisError && /SELECT is not allowed in cluster mode/.test(message)
    ) {
      why =
        `it is a node of a Redis Cluster, which has only database 0; drop "/${db}" from the URL`;
    } else if (error instanceof RedisError && /DB index is out of range/.test(message)) {
      why = `there is no database ${db} on the server; use a lower number in the URL's /db`;
    } else if (error instanceof Deno.errors.NotFound || /lookup|resolve/i.test(message)) {
      why = `host not found ${CHECK_URL}`;
    } else {
      why = `${message} ${CHECK_URL}`;
    }
    return new RedisConnectionError(`${prefix}: ${why}`, { cause: error });
  }

  #attach(conn: Deno.Conn, parser: RespParser): void {
    const link: Link = {
      conn,
      parser,
      writer: new RespWriter(),
      sent: [],
      head: 0,
      writing: false,
      flushQueued: false,
    };
    this.#link = link;
    this.#lastError = undefined;
    void this.#read(link);
    for (const pending of this.#waiting.splice(0)) this.#write(link, pending);
  }

  #write(link: Link, pending: Pending): void {
    link.writer.write(pending.args);
    pending.state = "sent";
    link.sent.push(pending);
    if (link.writer.length >= FLUSH_AT) {
      void this.#flush(link);
    } else if (!link.flushQueued) {
      link.flushQueued = true;
      queueMicrotask(() => {
        link.flushQueued = false;
        void this.#flush(link);
      });
    }
  }

  async #flush(link: Link): Promise<void> {
    if (link.writing) return; // the running flush takes what was added meanwhile
    link.writing = true;
    try {
      while (link.writer.length > 0 && this.#link === link) {
        await writeAll(link.conn, link.writer.take());
      }
    } catch (error) {
      this.#drop(link, oneLine(error));
    } finally {
      link.writing = false;
    }
  }

  async #read(link: Link): Promise<void> {
    try {
      while (this.#link === link) {
        const n = await link.conn.read(link.parser.space());
        if (n === null) throw new Error("the server closed the connection");
        link.parser.commit(n);
        for (let reply = link.parser.next(); reply !== INCOMPLETE; reply = link.parser.next()) {
          this.#reply(link, reply);
          if (this.#link !== link) return;
        }
      }
    } catch (error) {
      this.#drop(link, oneLine(error));
    }
  }

  #reply(link: Link, reply: RespValue): void {
    const pending = link.sent[link.head];
    if (pending === undefined) throw new Error("a reply came for no command");
    link.sent[link.head++] = undefined;
    // Drop the settled front now and then, so the queue stays as long as what is in flight.
    if (link.head >= 1024 && link.head * 2 >= link.sent.length) {
      link.sent.splice(0, link.head);
      link.head = 0;
    }
    const error = findError(reply);
    if (error) this.#settle(pending, new RedisError(pending.command, error.message));
    else this.#settle(pending, reply as RedisReply);
  }

  #settle(pending: Pending, outcome: RedisReply | Error): void {
    if (pending.state === "done") return;
    pending.state = "done";
    clearTimeout(pending.timer);
    if (outcome instanceof Error) pending.reject(outcome);
    else pending.resolve(outcome);
  }

  #expire(pending: Pending, timeout: number): void {
    if (pending.state === "waiting") {
      this.#waiting.splice(this.#waiting.indexOf(pending), 1);
      const why = this.#lastError ?? "not connected";
      this.#settle(
        pending,
        new RedisConnectionError(
          `Redis did not answer ${pending.command} within ${timeout} ms: still reconnecting (${why})`,
        ),
      );
    } else if (pending.state === "sent") {
      this.#settle(
        pending,
        new RedisConnectionError(`Redis did not answer ${pending.command} within ${timeout} ms`),
      );
      // Its reply may still come, so the replies after it would be misattributed: start over.
      if (this.#link) this.#drop(this.#link, `${pending.command} timed out`);
    }
  }

  /** Ends a connection: its commands in flight reject, then reconnect (or not). */
  #drop(link: Link, reason: string): void {
    if (this.#link !== link) return;
    this.#link = undefined;
    this.#lastError = reason;
    try {
      link.conn.close();
    } catch {
      // already closed
    }
    for (let i = link.head; i < link.sent.length; i++) {
      const pending = link.sent[i];
      if (pending === undefined) continue;
      const message = this.#closed
        ? `connection to Redis at ${this.#where} was closed before ${pending.command} got its reply`
        : `connection to Redis at ${this.#where} was lost (${reason}) before ${pending.command} got its reply; it may or may not have run`;
      this.#settle(pending, new RedisConnectionError(message));
    }
    link.sent = [];
    if (this.#closed) return;
    if (this.#options.reconnect) {
      void this.#reconnect();
    } else {
      this.#dead =
        `the connection to Redis at ${this.#where} was lost (${reason}) and reconnect is off`;
    }
  }

  async #reconnect(): Promise<void> {
    for (let attempt = 1; !this.#closed; attempt++) {
      await this.#sleep(backoff(attempt, FIRST_RECONNECT_DELAY, this.#options.maxReconnectDelay));
      if (this.#closed) return;
      try {
        const [conn, parser] = await this.#open();
        this.#attach(conn, parser);
        return;
      } catch (error) {
        this.#lastError = oneLine(error);
      }
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        if (this.#cancel === wake) this.#cancel = undefined;
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.#cancel = wake;
    });
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

/** The first error in a reply, nested ones too (EXEC answers with an array that may hold some). */
function findError(reply: RespValue): RespErrorReply | undefined {
  if (reply instanceof RespErrorReply) return reply;
  if (!Array.isArray(reply)) return undefined;
  for (const item of reply) {
    const error = findError(item);
    if (error) return error;
  }
  return undefined;
}

/**
 * An error's message on one line, for the next message to quote. Not
 * `_util.ts`'s `describe`, which would show an Error as JSON ("{}").
 */
function oneLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).replace(/\s+/g, " ");
}
