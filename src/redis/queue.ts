/**
 * The producer side of the Redis queue: {@linkcode RedisQueue} connects,
 * pushes job files, waits for their outcomes, counts, and starts consumers
 * (`consumer.ts`). The keys are named in `_keys.ts`; the scripts that move
 * jobs between them, and why no job is lost, are in `_scripts.ts`.
 *
 * @module
 */

import type { JobFile } from "../jobs/mod.ts";
import { RedisConnectionError } from "../errors.ts";
import { delay } from "../_util.ts";
import { RedisClient, type RedisClientOptions, type RedisReply } from "./client.ts";
import { type ConsumeOptions, type ConsumerSettings, RedisConsumer } from "./consumer.ts";
import { type QueueKeys, queueKeys } from "./_keys.ts";
import { PUSH, runScript } from "./_scripts.ts";
import { entryOf } from "./_entry.ts";
import { parseResult, type QueueResult, streamRecords } from "./_records.ts";
import { retryWait, withBlock } from "./_timing.ts";

/** Options of {@linkcode RedisQueue.connect}. */
export interface RedisQueueOptions extends RedisClientOptions {
  /**
   * The server: `redis://[user[:password]@]host[:port][/db]`, or `rediss://` for TLS.
   *
   * @default {the TASKPOOL_REDIS_URL environment variable}
   */
  url?: string;
  /** The list that holds the queue's jobs; the other keys start with its name and ":". */
  queue: string;
  /**
   * About how many outcomes `<queue>:results` keeps (older ones are trimmed).
   *
   * @default {1000000}
   */
  maxResults?: number;
}

/** What {@linkcode RedisQueue.prototype.push} enqueued. */
export interface PushReceipt {
  /** The id of this push; entries carry it as `batch`. */
  batch: string;
  /** The jobs' ids, in file order. */
  ids: string[];
  /** The last record of `<queue>:results` before the push: outcomes are read from here on. */
  from: string;
}

/** How many entries each part of a queue holds. */
export interface QueueCounts {
  /** Waiting in the list. */
  queued: number;
  /** Held by consumers (in their processing lists). */
  processing: number;
  /** Retries waiting for their backoff. */
  delayed: number;
  /** Waiting for their `after` jobs. */
  blocked: number;
  /** In the dead list. */
  dead: number;
  /** Registered consumers. */
  consumers: number;
}

/** Milliseconds `wait()` blocks per XREAD. */
const READ_BLOCK_MS = 1000;
const DEFAULT_MAX_RESULTS = 1_000_000;

/**
 * A job queue in a Redis list, shared by any number of producers and
 * consumers on any number of machines.
 *
 * Guarantees:
 * - **At least once.** A consumer moves each entry atomically into its own
 *   processing list (BLMOVE) and removes it only together with recording
 *   its outcome. A consumer that dies (its heartbeat expires) has its list
 *   moved back to the queue by another. So a job can run twice (a consumer
 *   that died after finishing, before recording): make tasks idempotent.
 * - **Retries** go to `<queue>:delayed` for their backoff, with the attempt
 *   number in the entry; after the last attempt the entry goes to
 *   `<queue>:dead` with its error. Malformed entries go there too.
 * - **Dependencies** (`after`) between the jobs of one push are honoured
 *   across consumers: a job is queued only once its dependencies have
 *   succeeded, and is recorded `skipped` if one failed.
 * - **Order**: first in, first out, except that moved-back and pushed jobs
 *   of higher `priority` go first; with several consumers, jobs may finish
 *   in any order.
 *
 * @example Push two jobs, one after the other, and wait for their outcomes
 * ```ts
 * import { RedisClient, RedisQueue, validateJobFile } from "@taskpool/taskpool";
 * import assert from "node:assert";
 *
 * const url = Deno.env.get("TASKPOOL_REDIS_URL"); // runs where a server is set
 * if (url) {
 *   const name = `doc:${crypto.randomUUID()}`;
 *   await using queue = await RedisQueue.connect({ url, queue: name });
 *   const checked = validateJobFile({
 *     jobs: [{ id: "build", command: ["true"] }, { id: "test", command: ["true"], after: ["build"] }],
 *   }, "./jobs.json");
 *   assert(checked.ok);
 *   const receipt = await queue.push(checked.file);
 *   const consumer = queue.consume({ workers: 2 });
 *   const results = await queue.wait(receipt);
 *   consumer.stop();
 *   await consumer.done;
 *   assert.deepStrictEqual(results.map((r) => r.status), ["succeeded", "succeeded"]);
 *   await using redis = await RedisClient.connect(url);
 *   await redis.send(["DEL", `${name}:results`]); // the only key a finished queue leaves
 * }
 * ```
 */
export class RedisQueue {
  /** The queue's list key. */
  readonly name: string;
  readonly #url: string;
  readonly #options: RedisQueueOptions;
  readonly #client: RedisClient;
  readonly #keys: QueueKeys;
  readonly #maxResults: number;
  #reader: RedisClient | null = null;
  #closed = false;

  private constructor(url: string, options: RedisQueueOptions, client: RedisClient) {
    this.name = options.queue;
    this.#url = url;
    this.#options = options;
    this.#client = client;
    this.#keys = queueKeys(options.queue);
    this.#maxResults = options.maxResults ?? DEFAULT_MAX_RESULTS;
  }

  /**
   * Connects to the server of `options.url` (or `TASKPOOL_REDIS_URL`).
   *
   * @param options The server, the queue's name, client options.
   * @returns The queue.
   * @throws {TypeError} When there is no URL, the URL is wrong, or the queue name is empty.
   * @throws {RedisConnectionError} When the server cannot be reached or refuses the password.
   *
   * @example A queue needs a name
   * ```ts
   * import { RedisQueue } from "@taskpool/taskpool";
   * import assert from "node:assert";
   *
   * await assert.rejects(RedisQueue.connect({ url: "redis://127.0.0.1:1", queue: "" }), TypeError);
   * ```
   */
  static async connect(options: RedisQueueOptions): Promise<RedisQueue> {
    if (typeof options.queue !== "string" || options.queue === "") {
      throw new TypeError(
        `Cannot use queue as its name must be a non-empty string: current value is ${
          JSON.stringify(options.queue)
        }`,
      );
    }
    const url = options.url ?? Deno.env.get("TASKPOOL_REDIS_URL");
    if (!url) {
      // The CLI puts its --redis flag in the place of the 'url' option.
      throw new TypeError(
        "no Redis URL: pass the 'url' option, e.g. redis://host:6379/0, or set TASKPOOL_REDIS_URL",
      );
    }
    const client = await RedisClient.connect(url, options);
    return new RedisQueue(url, options, client);
  }

  /**
   * Enqueues the jobs of a validated job file in one atomic step. Jobs
   * without `after` go to the queue (higher `priority` first, then file
   * order); the others wait in `<queue>:blocked` until their dependencies
   * have succeeded. Task modules and command directories below `base` are
   * stored relative to it.
   *
   * @param file A validated job file.
   * @param options `base`: the directory paths are made relative to (default: the current one).
   * @returns The receipt for {@linkcode RedisQueue.prototype.wait}.
   * @throws {RedisConnectionError} When the connection broke (the push may or may not have happened).
   */
  async push(file: JobFile, options: { base?: string } = {}): Promise<PushReceipt> {
    const base = options.base ?? Deno.cwd();
    const batch = crypto.randomUUID().slice(0, 13).replace("-", "");
    const ready: string[] = [];
    const blocked: [string, string, string[]][] = [];
    const ordered = [...file.jobs].sort((a, b) => b.priority - a.priority || a.index - b.index);
    for (const job of ordered) {
      const entry = JSON.stringify(entryOf(job, base, batch));
      if (job.after.length === 0) ready.push(entry);
      else {
        // A dependency listed twice counts once: PUSH counts the set's members.
        const after = [...new Set(job.after)].map((id) => `${batch}/${id}`);
        blocked.push([`${batch}/${job.id}`, entry, after]);
      }
    }
    const last = await this.#client.send(["XREVRANGE", this.#keys.results, "+", "-", "COUNT", 1]);
    const from = Array.isArray(last) && Array.isArray(last[0]) ? String(last[0][0]) : "0-0";
    const k = this.#keys;
    await runScript(this.#client, PUSH, [k.queue, k.blocked, k.pending], [
      k.prefix,
      JSON.stringify({ ready, blocked }),
    ]);
    return { batch, ids: file.jobs.map((job) => job.id), from };
  }

  /**
   * Waits for the outcome of every job of a push, reading `<queue>:results`;
   * a job that ran more than once is reported once (its first outcome).
   * Lost connections are retried; `signal` is the way out.
   *
   * @param receipt What `push()` returned.
   * @param options `signal` to stop waiting, `onResult` per outcome as it arrives.
   * @returns The outcomes in file order.
   * @throws The signal's reason when aborted.
   */
  async wait(
    receipt: PushReceipt,
    options: {
      signal?: AbortSignal;
      onResult?: (result: QueueResult) => void;
      onWarning?: (message: string) => void;
    } = {},
  ): Promise<QueueResult[]> {
    const { signal } = options;
    signal?.throwIfAborted();
    const wanted = new Set(receipt.ids);
    const found = new Map<string, QueueResult>();
    // XREAD BLOCK holds its connection: one of its own, kept for the next wait().
    const reader = this.#reader ?? await RedisClient.connect(this.#url, this.#options);
    this.#reader = null;
    const abort = () => reader.close();
    signal?.addEventListener("abort", abort, { once: true });
    if (signal?.aborted) abort(); // while connecting
    let last = receipt.from;
    let failures = 0;
    try {
      while (found.size < wanted.size) {
        signal?.throwIfAborted();
        let reply: RedisReply;
        try {
          reply = await reader.send(
            ["XREAD", "COUNT", 1000, "BLOCK", READ_BLOCK_MS, "STREAMS", this.#keys.results, last],
            { timeout: withBlock(READ_BLOCK_MS, this.#options.commandTimeout) },
          );
          failures = 0;
        } catch (error) {
          signal?.throwIfAborted();
          if (!(error instanceof RedisConnectionError)) throw error;
          options.onWarning?.(`${error.message}; retrying`);
          await delay(retryWait(++failures), signal);
          continue;
        }
        for (const [id, fields] of streamRecords(reply)) {
          last = id;
          if (fields.batch !== receipt.batch || !wanted.has(fields.id)) continue;
          if (found.has(fields.id)) continue;
          const result = parseResult(fields);
          found.set(fields.id, result);
          options.onResult?.(result);
        }
      }
    } finally {
      signal?.removeEventListener("abort", abort);
      if (this.#reader === null && !this.#closed && !signal?.aborted) this.#reader = reader;
      else reader.close();
    }
    return receipt.ids.map((id) => found.get(id)!);
  }

  /**
   * Starts a consumer: it takes jobs while its pool has room and runs them
   * until stopped. See {@linkcode RedisConsumer}.
   *
   * @param options Pool size, heartbeat, callbacks.
   * @returns The running consumer.
   * @throws {RangeError} When `heartbeat` is not an integer of at least 100 ms.
   */
  consume(options: ConsumeOptions = {}): RedisConsumer {
    const settings: ConsumerSettings = {
      url: this.#url,
      clientOptions: this.#options,
      keys: this.#keys,
      maxResults: this.#maxResults,
    };
    return new RedisConsumer(settings, options);
  }

  /**
   * Counts what each part of the queue holds.
   *
   * @returns The counts.
   */
  async counts(): Promise<QueueCounts> {
    const k = this.#keys;
    const c = this.#client;
    const consumers = await c.send(["SMEMBERS", k.consumers]) as string[];
    const [queued, delayed, blocked, dead, ...lists] = await Promise.all([
      c.send(["LLEN", k.queue]),
      c.send(["ZCARD", k.delayed]),
      c.send(["HLEN", k.blocked]),
      c.send(["LLEN", k.dead]),
      ...consumers.map((id) => c.send(["LLEN", k.processing(id)])),
    ]) as number[];
    const processing = lists.reduce((sum, n) => sum + n, 0);
    return { queued, processing, delayed, blocked, dead, consumers: consumers.length };
  }

  /** Closes the queue's connection (consumers have their own). Idempotent. */
  close(): void {
    this.#closed = true;
    this.#client.close();
    this.#reader?.close();
    this.#reader = null;
  }

  /** Calls `close()`. */
  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }
}
