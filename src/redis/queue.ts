/**
 * A job queue in Redis that several machines consume at once: at least
 * once, nothing lost when a consumer dies. The keys and the scripts that
 * move jobs between them are described in `_scripts.ts`.
 *
 * @module
 */

import type { Job, JobFile } from "../jobs/mod.ts";
import type { JobResult } from "../scheduler.ts";
import { WorkerPool } from "../pool.ts";
import { runCommand, terminateTree } from "../_command.ts";
import {
  RedisClient,
  type RedisClientOptions,
  RedisConnectionError,
  RedisError,
  type RedisReply,
} from "./client.ts";
import {
  ACK,
  PROMOTE,
  PUSH,
  type QueueKeys,
  queueKeys,
  RECOVER,
  RELEASE,
  RETRY,
  type Script,
} from "./_scripts.ts";
import { entryOf, parseEntry } from "./_entry.ts";

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

/** One job's outcome as recorded in `<queue>:results`. */
export interface QueueResult extends JobResult {
  /** The push it came in ("" for an entry pushed by hand). */
  batch: string;
  /** The consumer that ran it (absent for a job skipped because a dependency failed). */
  consumer?: string;
}

/** Options of {@linkcode RedisQueue.prototype.consume}. */
export interface ConsumeOptions {
  /**
   * Workers of the consumer's pool.
   *
   * @default {navigator.hardwareConcurrency}
   */
  workers?: number;
  /**
   * Tasks queued in the pool beyond the running ones. The consumer holds at
   * most `workers + capacity` jobs, and takes one only when it has room.
   *
   * @default {workers * 2}
   */
  capacity?: number;
  /**
   * The directory that relative task modules and command directories of
   * entries resolve against: a checkout of the code that pushed them.
   *
   * @default {the current directory}
   */
  base?: string;
  /**
   * Milliseconds the consumer's heartbeat lives: it is renewed every third
   * of this, and a consumer silent for this long is presumed dead and its
   * jobs are moved back to the queue.
   *
   * @default {10000}
   */
  heartbeat?: number;
  /** The consumer's id (unique among the queue's consumers). @default {host:pid:random} */
  id?: string;
  /** Stops taking jobs when aborted; what is held finishes (as `stop()`). */
  signal?: AbortSignal;
  /** Called when an attempt starts. */
  onStart?: (job: Job, attempt: number) => void;
  /** Called once per job this consumer finishes: succeeded, failed for good, or malformed. */
  onFinish?: (result: QueueResult) => void;
  /** Called when a failed attempt is scheduled to run again. */
  onRetry?: (job: Job, attempt: number, error: string) => void;
  /** Called when this consumer moved a dead consumer's jobs back to the queue. */
  onRecover?: (moved: number, consumers: string[]) => void;
  /** Called with a one-line warning (the connection was lost, a write failed and is retried). */
  onWarning?: (message: string) => void;
}

/** What a consumer did. */
export interface ConsumerStats {
  /** Entries taken from the queue. */
  taken: number;
  /** Jobs that succeeded. */
  succeeded: number;
  /** Jobs that failed for good (sent to the dead list). */
  failed: number;
  /** Failed attempts scheduled to run again. */
  retried: number;
  /** Malformed entries sent to the dead list. */
  malformed: number;
  /** Entries moved back to the queue from dead consumers. */
  recovered: number;
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

/** Seconds a BLMOVE blocks before it is re-issued. */
const BLOCK_SECONDS = 2;
/** Entries taken with one round trip after a blocking take (when there is room). */
const TAKE_BATCH = 256;
/** How often any consumer looks for due retries, ms (the one that scheduled a retry also wakes at its due time). */
const PROMOTE_EVERY_MS = 1000;
/** Milliseconds `wait()` blocks per XREAD. */
const READ_BLOCK_MS = 1000;
const DEFAULT_HEARTBEAT_MS = 10_000;
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
 * @example Push two jobs and wait for their outcomes
 * ```ts ignore
 * import { RedisQueue, validateJobFile } from "@taskpool/taskpool";
 *
 * await using queue = await RedisQueue.connect({ url: "redis://127.0.0.1:6379/0", queue: "jobs" });
 * const checked = validateJobFile({ jobs: [{ id: "hi", command: ["echo", "hi"] }] }, "./jobs.json");
 * if (!checked.ok) throw new Error("invalid");
 * const receipt = await queue.push(checked.file);
 * const consumer = queue.consume({ workers: 2 });
 * const [result] = await queue.wait(receipt);
 * consumer.stop();
 * await consumer.done;
 * console.log(result.status); // "succeeded"
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
    settings.set(this, {
      url,
      clientOptions: options,
      keys: this.#keys,
      maxResults: this.#maxResults,
    });
  }

  /**
   * Connects to the server of `options.url` (or `TASKPOOL_REDIS_URL`).
   *
   * @param options The server, the queue's name, client options.
   * @returns The queue.
   * @throws {TypeError} When there is no URL, the URL is wrong, or the queue name is empty.
   * @throws {RedisConnectionError} When the server cannot be reached or refuses the password.
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
      throw new TypeError(
        "no Redis URL: pass --redis redis://host:6379/0 or set TASKPOOL_REDIS_URL",
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
          await delay(backoff(failures++), signal);
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
   */
  consume(options: ConsumeOptions = {}): RedisConsumer {
    return new RedisConsumer(this, options);
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

/** What a consumer needs of its queue, kept out of the public API. */
const settings = new WeakMap<RedisQueue, {
  url: string;
  clientOptions: RedisClientOptions;
  keys: QueueKeys;
  maxResults: number;
}>();

/** A job this consumer holds. */
interface Held {
  raw: string;
  job: Job;
  batch: string;
  attempt: number;
  value: Record<string, unknown>;
}

/**
 * One consumer of a {@linkcode RedisQueue}: a {@linkcode WorkerPool} fed
 * from the queue. Made by {@linkcode RedisQueue.prototype.consume}.
 *
 * It holds at most `workers + capacity` jobs and takes one only when it has
 * room. `stop()` (or the `signal`) takes nothing more, lets what it holds
 * finish and be recorded, gives back anything taken but not started, and
 * deregisters; `done` then resolves. `cancel()` ends at once, leaving what
 * it holds in its processing list for another consumer to recover.
 */
export class RedisConsumer {
  /** The consumer's id; its processing list is `<queue>:processing:<id>`. */
  readonly id: string;
  /** Resolves with the stats once the consumer has stopped; rejects if it could not run. */
  readonly done: Promise<ConsumerStats>;
  /** What it did so far. */
  readonly stats: ConsumerStats = {
    taken: 0,
    succeeded: 0,
    failed: 0,
    retried: 0,
    malformed: 0,
    recovered: 0,
  };
  readonly #url: string;
  readonly #clientOptions: RedisClientOptions;
  readonly #keys: QueueKeys;
  readonly #processing: string;
  readonly #maxResults: string;
  readonly #options: ConsumeOptions;
  readonly #workers: number;
  readonly #limit: number;
  readonly #ttl: number;
  readonly #base: string;
  readonly #held = new Map<string, number>();
  readonly #children = new Set<Deno.ChildProcess>();
  readonly #commandsWaiting: Held[] = [];
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  #heldCount = 0;
  #commands = 0;
  #client: RedisClient | null = null;
  #taker: RedisClient | null = null;
  #pool: WorkerPool | null = null;
  #stopping = false;
  #cancelled = false;
  #reconcile = false;
  /** Acks in flight, each settled once its reply was handled (see `#reconcileHeld`). */
  readonly #acks = new Set<Promise<void>>();
  /** Seconds a BLMOVE blocks: below a third of the heartbeat (see `#takeLoop`). */
  readonly #block: number;
  /** The first Redis error that stopped the consumer. */
  #failure: unknown;
  #wake: (() => void) | null = null;
  #cancelling: Promise<unknown> | undefined;

  /**
   * Starts consuming; {@linkcode RedisQueue.prototype.consume} is the same.
   *
   * @param queue The queue (its server and name; the consumer opens connections of its own).
   * @param options Pool size, heartbeat, callbacks.
   * @throws {RangeError} When `heartbeat` is below 100 ms.
   */
  constructor(queue: RedisQueue, options: ConsumeOptions = {}) {
    const { url, clientOptions, keys, maxResults } = settings.get(queue)!;
    this.#url = url;
    this.#clientOptions = clientOptions;
    this.#keys = keys;
    this.#maxResults = String(maxResults);
    this.#options = options;
    this.id = options.id ??
      `${Deno.hostname()}:${Deno.pid}:${crypto.randomUUID().slice(0, 8)}`;
    this.#processing = keys.processing(this.id);
    this.#workers = options.workers ?? (navigator.hardwareConcurrency || 1);
    this.#limit = this.#workers + (options.capacity ?? this.#workers * 2);
    this.#ttl = options.heartbeat ?? DEFAULT_HEARTBEAT_MS;
    this.#base = options.base ?? Deno.cwd();
    if (!Number.isInteger(this.#ttl) || this.#ttl < 100) {
      throw new RangeError(
        `Cannot consume as 'heartbeat' must be an integer of at least 100 ms: current value is ${this.#ttl}`,
      );
    }
    this.#block = Math.min(BLOCK_SECONDS, Math.floor(this.#ttl / 3) / 1000);
    options.signal?.addEventListener("abort", () => this.stop(), { once: true });
    this.done = this.#run();
  }

  /** Jobs held now (running, queued in the pool, or being recorded). */
  get held(): number {
    return this.#heldCount;
  }

  /** Takes nothing more; what is held finishes and is recorded; then `done` resolves. Idempotent. */
  stop(): void {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#taker?.close(); // ends a blocked BLMOVE now
    this.#wake?.();
  }

  /**
   * Ends at once: running tasks and commands are killed and nothing more is
   * recorded; held jobs stay in the processing list, and the heartbeat is
   * removed so that another consumer recovers them without waiting for it
   * to expire.
   */
  cancel(): void {
    if (this.#cancelled) return;
    this.#cancelled = true;
    this.stop();
    this.#wake?.(); // a drain in progress ends now
    this.#pool?.terminate();
    for (const child of this.#children) terminateTree(child);
    // Remove the heartbeat (briefly: the server may be down), then close, which
    // ends every write still waiting for the server.
    const client = this.#client;
    this.#cancelling = client === null
      ? undefined
      : client.send(["DEL", this.#keys.heartbeat(this.id)], { timeout: 300 })
        .catch(() => {}).finally(() => client.close());
  }

  async #run(): Promise<ConsumerStats> {
    try {
      this.#client = await RedisClient.connect(this.#url, this.#clientOptions);
      this.#taker = await RedisClient.connect(this.#url, this.#clientOptions);
    } catch (error) {
      this.#client?.close();
      throw error;
    }
    if (this.#cancelled) {
      // Cancelled while connecting: nothing was registered or taken.
      this.#client.close();
      this.#taker.close();
      return this.stats;
    }
    if (this.#stopping) this.#taker.close();
    this.#pool = new WorkerPool({
      workers: this.#workers,
      capacity: this.#limit - this.#workers,
      name: "taskpool consumer",
    });
    try {
      await this.#beat();
      this.#every(this.#ttl / 3, () => this.#beat());
      await this.#recover();
      this.#every(this.#ttl / 2, () => this.#recover());
      this.#every(PROMOTE_EVERY_MS, () => this.#promote());
      await this.#takeLoop();
    } catch (error) {
      this.#fail(error);
    }
    await this.#drained();
    if (!this.#cancelled) {
      // Give back what was taken but never reached us (a BLMOVE cut by stop()), and leave.
      await this.#durable(
        "give back and deregister",
        () => this.#release([], true),
      ).catch(() => {});
    } else {
      await this.#cancelling;
    }
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    if (this.#cancelled) this.#pool.terminate();
    else await this.#pool.close();
    this.#client.close();
    this.#taker.close();
    if (this.#failure !== undefined) throw this.#failure;
    return this.stats;
  }

  /** Takes entries while there is room, until stopped. */
  async #takeLoop(): Promise<void> {
    const k = this.#keys;
    let failures = 0;
    while (!this.#stopping) {
      // Here, and only here, no take is in flight (see `#reconcileHeld`).
      if (this.#reconcile) await this.#reconcileHeld();
      if (this.#heldCount >= this.#limit) {
        await new Promise<void>((resolve) => this.#wake = resolve);
        this.#wake = null;
        continue;
      }
      let reply: RedisReply;
      try {
        // A BLMOVE ends (on the server) before our heartbeat could expire, so
        // one that outlives us cannot move an entry into a list that another
        // consumer has already recovered and no longer watches.
        reply = await this.#taker!.send(
          ["BLMOVE", k.queue, this.#processing, "RIGHT", "LEFT", this.#block],
          { timeout: withBlock(this.#block * 1000, this.#clientOptions.commandTimeout) },
        );
        failures = 0;
      } catch (error) {
        if (this.#stopping) break;
        if (!(error instanceof RedisConnectionError)) throw error;
        // The move may have happened with its reply lost: look in our list once we can.
        this.#reconcile = true;
        this.#warn(`${error.message}; retrying`);
        await delay(backoff(failures++));
        continue;
      }
      if (typeof reply !== "string") continue;
      this.#take(reply);
      // One round trip for as many as there is room for.
      const room = Math.min(this.#limit - this.#heldCount, TAKE_BATCH);
      if (room <= 0 || this.#stopping) continue;
      const more = await Promise.allSettled(
        Array.from(
          { length: room },
          () => this.#taker!.send(["LMOVE", k.queue, this.#processing, "RIGHT", "LEFT"]),
        ),
      );
      for (const outcome of more) {
        if (outcome.status === "rejected") this.#reconcile = true;
        else if (typeof outcome.value === "string") this.#take(outcome.value);
      }
    }
  }

  /**
   * Gives back entries of our processing list that we do not hold: their
   * replies were lost. Runs in the take loop between takes, so no take is in
   * flight; the acks sent before the LRANGE (on the same connection, so run
   * before it) are awaited first, so that what they took counts as held.
   */
  async #reconcileHeld(): Promise<void> {
    const before = [...this.#acks];
    let list: RedisReply;
    try {
      list = await this.#client!.send(["LRANGE", this.#processing, 0, -1]);
    } catch {
      return; // still down: the loop tries again after its next take
    }
    await Promise.allSettled(before);
    this.#reconcile = false;
    const counts = new Map(this.#held);
    const orphans: string[] = [];
    for (const raw of list as string[]) {
      const held = counts.get(raw) ?? 0;
      if (held > 0) counts.set(raw, held - 1);
      else orphans.push(raw);
    }
    if (orphans.length > 0) {
      await this.#durable("give back", () => this.#release(orphans, false)).catch(() => {});
    }
  }

  #take(raw: string): void {
    this.stats.taken++;
    this.#heldCount++;
    this.#held.set(raw, (this.#held.get(raw) ?? 0) + 1);
    const parsed = parseEntry(raw, this.#base);
    if (!parsed.ok) {
      this.stats.malformed++;
      const error = `malformed entry: ${parsed.error}`;
      const result: QueueResult = {
        id: parsed.id,
        batch: parsed.batch,
        status: "failed",
        attempts: 0,
        error,
        consumer: this.id,
      };
      this.#options.onFinish?.(result);
      this.#ack(raw, result, deadRecord(raw, error, this.id, 0));
      return;
    }
    const held: Held = { raw, ...parsed };
    if (held.job.kind === "command" && this.#commands >= this.#workers) {
      this.#commandsWaiting.push(held);
    } else this.#start(held);
  }

  #start(held: Held): void {
    const { job, attempt } = held;
    this.#options.onStart?.(job, attempt);
    const start = Date.now();
    const began = performance.now();
    const ended = (ok: boolean, details: Partial<QueueResult>) =>
      this.#ended(held, ok, { ...details, start, duration: performance.now() - began });
    if (job.kind === "task") {
      this.#pool!.run({ module: job.module, name: job.name!, args: job.args, timeout: job.timeout })
        .then(
          (result) => ended(true, { result }),
          (error) => ended(false, { error: (error as Error)?.message ?? String(error) }),
        );
    } else {
      this.#commands++;
      runCommand(job, this.#children)
        .then(
          ({ ok, ...details }) => ended(ok, details),
          (error) => ended(false, { error: String(error) }),
        )
        .finally(() => {
          this.#commands--;
          const next = this.#commandsWaiting.shift();
          if (next) this.#start(next);
        });
    }
  }

  #ended(held: Held, ok: boolean, details: Partial<QueueResult>): void {
    if (this.#cancelled) return; // left in the processing list for recovery
    const { job, attempt, raw, batch } = held;
    const result: QueueResult = {
      id: job.id,
      batch,
      status: ok ? "succeeded" : "failed",
      attempts: attempt,
      ...details,
      consumer: this.id,
    };
    if (!ok && attempt <= job.retries) {
      this.stats.retried++;
      const wait = Math.round(job.backoff * 2 ** (attempt - 1) * (0.5 + Math.random()));
      const token = crypto.randomUUID().slice(0, 8);
      const next = `${token}|${JSON.stringify({ ...held.value, attempt: attempt + 1 })}`;
      this.#options.onRetry?.(job, attempt, result.error ?? "failed");
      const k = this.#keys;
      this.#durable(
        `schedule the retry of ${job.id}`,
        () =>
          runScript(this.#client!, RETRY, [this.#processing, k.queue, k.delayed], [
            raw,
            next,
            wait,
          ]),
      )
        .then(() => this.#after(wait, () => this.#promote()), () => {})
        .finally(() => this.#let(raw));
      return;
    }
    if (ok) this.stats.succeeded++;
    else this.stats.failed++;
    this.#options.onFinish?.(result);
    this.#ack(
      raw,
      result,
      ok ? "" : deadRecord(JSON.stringify(held.value), result.error ?? "", this.id, attempt),
    );
  }

  /**
   * Records an outcome and removes the entry (one script), taking the next
   * entry in the same step while not stopping; then lets the entry go. Its
   * place is kept until the reply, so the next entry has room.
   */
  #ack(raw: string, result: QueueResult, dead: string): void {
    const k = this.#keys;
    let again = "0";
    const handled = this.#durable(`record the outcome of ${result.id || "an entry"}`, () => {
      const take = this.#stopping ? "0" : "1";
      const sent = runScript(
        this.#client!,
        ACK,
        [this.#processing, k.queue, k.results, k.dead, k.blocked, k.pending],
        [
          raw,
          result.batch,
          result.id,
          result.status,
          toJson(result),
          dead,
          k.prefix,
          this.#maxResults,
          take,
          again,
        ],
      );
      again = "1";
      return sent.catch((error) => {
        if (take === "1" && error instanceof RedisConnectionError) {
          // A lost reply may have carried the next entry: the take loop looks
          // in our list (woken now if it waits for room).
          this.#reconcile = true;
          this.#wake?.();
        }
        throw error;
      });
    })
      .then((reply) => {
        const next = Array.isArray(reply) ? reply[1] : null;
        this.#let(raw);
        if (typeof next === "string") this.#take(next);
      }, () => this.#let(raw));
    this.#acks.add(handled);
    handled.finally(() => this.#acks.delete(handled));
  }

  /** Forgets a held entry, and wakes the taker (room) or the drain. */
  #let(raw: string): void {
    const n = this.#held.get(raw)! - 1;
    if (n === 0) this.#held.delete(raw);
    else this.#held.set(raw, n);
    this.#heldCount--;
    this.#wake?.();
  }

  /** Resolves once nothing is held (or at once when cancelled). */
  async #drained(): Promise<void> {
    while (this.#heldCount > 0 && !this.#cancelled) {
      await new Promise<void>((resolve) => this.#wake = resolve);
      this.#wake = null;
    }
  }

  #beat(): Promise<unknown> {
    const info = JSON.stringify({ host: Deno.hostname(), pid: Deno.pid, held: this.#heldCount });
    return Promise.all([
      this.#client!.send(["SET", this.#keys.heartbeat(this.id), info, "PX", this.#ttl]),
      this.#client!.send(["SADD", this.#keys.consumers, this.id]),
    ]);
  }

  async #recover(): Promise<void> {
    const k = this.#keys;
    const [moved, gone] = await runScript(this.#client!, RECOVER, [k.consumers, k.queue], [
      k.prefix,
      this.id,
    ]) as [number, string[]];
    if (gone.length > 0) {
      this.stats.recovered += moved;
      this.#options.onRecover?.(moved, gone);
    }
  }

  async #promote(): Promise<void> {
    const k = this.#keys;
    await runScript(this.#client!, PROMOTE, [k.delayed, k.queue], [1000]);
  }

  #release(entries: string[], leave: boolean): Promise<RedisReply> {
    const k = this.#keys;
    return runScript(
      this.#client!,
      RELEASE,
      [this.#processing, k.queue, k.consumers, k.heartbeat(this.id)],
      [this.id, leave ? "1" : "0", ...entries],
    );
  }

  /** Runs `task` every `ms` until the consumer ends; a failure is a warning. */
  #every(ms: number, task: () => Promise<unknown>): void {
    const tick = () => {
      task().catch((error) => this.#warn(`${(error as Error).message}; retrying`))
        .finally(() => {
          if (!this.#done()) this.#after(ms, tick);
        });
    };
    this.#after(ms, tick);
  }

  #after(ms: number, fn: () => void): void {
    if (this.#done()) return;
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      fn();
    }, ms);
    this.#timers.add(timer);
  }

  #done(): boolean {
    return this.#cancelled || (this.#stopping && this.#heldCount === 0);
  }

  /**
   * Runs a write until it succeeds: a lost connection is retried with
   * backoff (the scripts are safe to run twice); a Redis error is reported
   * and given up (the entry stays in the processing list, and is given back
   * when the consumer stops).
   */
  async #durable(what: string, write: () => Promise<unknown>): Promise<unknown> {
    for (let failures = 0;; failures++) {
      try {
        return await write();
      } catch (error) {
        if (error instanceof RedisConnectionError && !this.#cancelled) {
          this.#warn(`cannot ${what}: ${error.message}; retrying`);
          await delay(backoff(failures));
          continue;
        }
        if (!this.#cancelled) this.#fail(error);
        throw error;
      }
    }
  }

  #warn(message: string): void {
    if (!this.#cancelled) this.#options.onWarning?.(message);
  }

  /**
   * Stops the consumer for an error Redis will keep giving (a key of the
   * wrong type, a script the server refuses): `done` rejects with it. What
   * could not be recorded stays in the processing list and is given back.
   */
  #fail(error: unknown): void {
    this.#failure ??= error;
    this.stop();
  }
}

// -- Helpers --

const shas = new Map<Script, Promise<string>>();

/** Runs a script by its SHA-1, loading it when the server does not know it (say, after a restart). */
async function runScript(
  client: RedisClient,
  script: Script,
  keys: string[],
  args: (string | number)[],
): Promise<RedisReply> {
  let sha = shas.get(script);
  if (sha === undefined) {
    sha = crypto.subtle.digest("SHA-1", new TextEncoder().encode(script.source)).then((hash) =>
      Array.from(new Uint8Array(hash), (b) => b.toString(16).padStart(2, "0")).join("")
    );
    shas.set(script, sha);
  }
  try {
    try {
      return await client.send(["EVALSHA", await sha, keys.length, ...keys, ...args]);
    } catch (error) {
      if (!(error instanceof RedisError) || !error.message.includes("NOSCRIPT")) throw error;
      return await client.send(["EVAL", script.source, keys.length, ...keys, ...args]);
    }
  } catch (error) {
    if (!(error instanceof RedisError)) throw error;
    // Name the script, not EVALSHA, and drop the server's "script: <sha>" tail.
    const reply = error.message.replace(/^Redis error for \w+: /, "")
      .replace(/ script: [0-9a-f]{40}.*$/, "");
    throw new RedisError(`the ${script.name} script`, reply);
  }
}

/** A dead-list record: the entry, why, who, when. */
function deadRecord(entry: string, error: string, consumer: string, attempts: number): string {
  return JSON.stringify({ entry, error, attempts, consumer, at: new Date().toISOString() });
}

/** JSON of an outcome; a result JSON cannot hold becomes its string form. */
function toJson(result: QueueResult): string {
  try {
    return JSON.stringify(result);
  } catch {
    return JSON.stringify({ ...result, result: String(result.result) });
  }
}

/** The records of an XREAD reply: [id, fields]. */
function* streamRecords(reply: RedisReply): Generator<[string, Record<string, string>]> {
  if (!Array.isArray(reply)) return;
  for (const stream of reply) {
    const records = (stream as RedisReply[])[1] as RedisReply[];
    for (const record of records) {
      const [id, list] = record as [string, string[]];
      const fields: Record<string, string> = {};
      for (let i = 0; i + 1 < list.length; i += 2) fields[list[i]] = list[i + 1];
      yield [id, fields];
    }
  }
}

function parseResult(fields: Record<string, string>): QueueResult {
  try {
    return JSON.parse(fields.data) as QueueResult;
  } catch {
    return {
      id: fields.id,
      batch: fields.batch,
      status: fields.status as QueueResult["status"],
      attempts: 0,
    };
  }
}

/** A blocking command's timeout: its block time plus the command timeout (0: none). */
function withBlock(blockMs: number, commandTimeout = 10_000): number {
  return commandTimeout === 0 ? 0 : blockMs + commandTimeout;
}

/** 50 ms doubling to 2 s, with jitter. */
function backoff(failures: number): number {
  return Math.min(2000, 50 * 2 ** Math.min(failures, 6)) * (0.5 + Math.random());
}

function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
